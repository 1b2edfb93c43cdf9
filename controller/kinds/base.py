"""The contract every kind implements: observe (bulk read), diff (pure), apply (one operation).

A kind never talks to another kind. The engine observes each kind that has desired documents,
diffs, orders all operations by ``apply_order`` and applies them one at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from controller.aws import AwsApi
from controller.engine.plan import KindPlan, Operation
from controller.manifests import Manifest
from controller.observability.metrics import Metrics

LiveT = TypeVar("LiveT")


@dataclass(frozen=True)
class Context:
    """What every step may know about where and when it runs."""

    controller_id: str
    region: str
    now: datetime
    target: str = "default"


class Kind(ABC, Generic[LiveT]):
    kind: ClassVar[str]
    apply_order: ClassVar[int]  # lower applies first (Activation before TagSync)

    @abstractmethod
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> LiveT:
        """Read the live state this kind compares against, in as few paginated calls as possible."""

    @abstractmethod
    def diff(self, desired: list[Manifest], live: LiveT, ctx: Context) -> KindPlan:
        """Pure: the operations that make live equal desired, and what was noticed on the way."""

    @abstractmethod
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> None:
        """Carry out one operation this kind planned."""

    def report(self, desired: list[Manifest], live: LiveT, metrics: Metrics, ctx: Context) -> None:
        """Set this kind's status gauges from what was observed (no AWS calls)."""
        return None

    def export(self, aws: AwsApi, ctx: Context) -> list[dict[str, Any]]:
        """Live resources of this kind as manifest documents, for adopting an existing fleet."""
        return []
