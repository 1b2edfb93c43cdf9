"""High availability: per-target leases in DynamoDB, spread over replicas by fair share."""

from controller.service.ha.keeper import LeaseKeeper, LeaseSettings
from controller.service.ha.sharding import Balance, fair_share, plan_balance
from controller.service.ha.table import LeaseConflict, LeaseRecord, LeaseTable

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
