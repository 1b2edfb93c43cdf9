"""The contract between the engine and the kinds: what both import, and neither owns.

The plan model (typed operations, findings, refs, requeue), the ownership tags, crash points, the
``Kind`` base and its status types, and the registry of kinds. The engine and every kind import
this package; this package imports neither (the registry finds the kinds by name, at first use),
so there is no import cycle between them.
"""

from controller.contract.crashpoints import crash_point
from controller.contract.kind import (
    PLACEHOLDER,
    Context,
    DefaultVersionChanged,
    Event,
    Exported,
    Kind,
)
from controller.contract.memory import Changes, KindMemory, Targeted
from controller.contract.ownership import (
    MANIFEST_TAG,
    OWNER_TAG,
    RESERVED_PREFIX,
    WORKSPACE_ID_TAG,
    is_owned,
    manifest_of,
    owner_tags,
)
from controller.contract.plan import (
    Action,
    Blocked,
    FieldChange,
    Finding,
    KindPlan,
    Operation,
    Plan,
    Ref,
    Requeue,
    Severity,
    Step,
)
from controller.contract.status import GaugeFamily, Health, KindStatus, ResourceStatus

__all__ = [
    "MANIFEST_TAG",
    "OWNER_TAG",
    "PLACEHOLDER",
    "RESERVED_PREFIX",
    "WORKSPACE_ID_TAG",
    "Action",
    "Blocked",
    "Changes",
    "Context",
    "DefaultVersionChanged",
    "Event",
    "Exported",
    "FieldChange",
    "Finding",
    "GaugeFamily",
    "Health",
    "Kind",
    "KindMemory",
    "KindPlan",
    "KindStatus",
    "Operation",
    "Plan",
    "Ref",
    "Requeue",
    "ResourceStatus",
    "Severity",
    "Step",
    "Targeted",
    "crash_point",
    "is_owned",
    "manifest_of",
    "owner_tags",
]
