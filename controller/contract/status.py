"""What a kind says about the health of what it observed, for the engine to report.

A kind never writes metrics or findings about health itself: ``Kind.health`` returns a
``KindStatus`` (one ``ResourceStatus`` per resource, the number of resources it manages, and the
values of the gauge families the kind declares), and the engine turns it into findings and
Prometheus series, the same way for every kind (gitops-engine's health, controller-runtime's
status). A kind's gauge families are declared on the kind (``Kind.gauges``), so adding a kind adds
its metrics without touching the metrics module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Health(StrEnum):
    HEALTHY = "Healthy"  # live matches desired and works
    PROGRESSING = "Progressing"  # on its way (created, publishing, registering)
    DEGRADED = "Degraded"  # exists but does not work as desired (failed installs, expired)
    MISSING = "Missing"  # does not exist (yet)
    UNKNOWN = "Unknown"  # cannot be told (refused, not readable)


@dataclass(frozen=True, kw_only=True)
class ResourceStatus:
    """The health of one resource (a manifest's), and what a reviewer should read about it.

    A non-empty ``message`` becomes a finding: info when healthy or progressing, a warning
    otherwise; ``count`` and ``examples`` say how many things it is about and which.
    """

    name: str
    health: Health
    message: str = ""
    count: int = 1
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GaugeFamily:
    """A status gauge a kind exports: ``fleet_<name>{target, <labels>}``."""

    name: str
    help: str
    labels: tuple[str, ...]

    @property
    def metric_name(self) -> str:
        return f"fleet_{self.name}"


GaugeValues = dict[tuple[str, ...], float]
"""Label values after ``target`` (in the family's label order) -> value."""


@dataclass(kw_only=True)
class KindStatus:
    """One kind's status after a pass: every resource's health and its gauges' values.

    ``gauges`` holds the complete snapshot of each family the kind declares: a label set missing
    from it is removed from the exposition (a deleted activation leaves no series behind).
    ``managed`` is how many resources this controller manages of this kind (None: not known).
    """

    resources: list[ResourceStatus] = field(default_factory=list)
    managed: int | None = None
    gauges: dict[str, GaugeValues] = field(default_factory=dict)  # family name -> values


__all__ = ["GaugeFamily", "GaugeValues", "Health", "KindStatus", "ResourceStatus"]
