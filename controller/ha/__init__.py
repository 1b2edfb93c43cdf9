"""High availability: per-target leases in DynamoDB, spread over replicas by fair share."""

from controller.ha.keeper import LeaseKeeper, LeaseSettings
from controller.ha.sharding import Balance, fair_share, plan_balance
from controller.ha.table import LeaseConflict, LeaseRecord, LeaseTable

__all__ = [
    "Balance",
    "LeaseConflict",
    "LeaseKeeper",
    "LeaseRecord",
    "LeaseSettings",
    "LeaseTable",
    "fair_share",
    "plan_balance",
]
