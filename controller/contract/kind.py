"""The contract every kind implements, and the engine relies on.

A kind is one module in ``controller/kinds/`` holding a ``Kind`` subclass; the registry
(``controller/contract/registry.py``) discovers it, and nothing else needs to know:

* ``kind`` and ``spec_model``: the manifest kind and the pydantic model of its spec (its whole-set
  checks are the model's ``check_set``). The one registry of kinds is this: a kind names its spec.
* ``refers_to`` and ``references(manifest, desired)``: the manifests (of those kinds) a manifest
  depends on. The engine derives apply waves from them (a resource after what it references,
  deletes in reverse), and blocks a resource's operations when one it references was refused or
  failed in the same pass.
* ``observe`` (bulk reads) -> ``diff`` (pure: typed operations, findings, a requeue wish) ->
  ``apply`` (one operation; ``match`` on its ``Step`` payload). ``apply`` may return events that
  the kinds referencing this resource hear through ``on_dependency`` (the edge's hook: a new
  package version starts the associations that follow it at "latest"); once they all did,
  ``after_dependents`` lets the emitting kind record it.
* ``health`` -> ``KindStatus``: per-resource health and the values of the ``gauges`` the kind
  declares; the engine makes findings and metrics of it.
* ``observe_cached`` and ``observe_changes`` (optional, for a kind that keeps a live cache in
  ``ctx.memory``): the live state from the cache without a read (a new desired state starts
  writing at once, and a full pass diffs against what event-driven passes learned meanwhile), and
  a targeted read of only the resources an event named (``Changes``), folded into the cache.
* ``implied``: a resource nobody writes in YAML but the desired state needs (the detection
  document package associations run). The engine gives such a kind one manifest per reference
  other manifests make to it.

A kind never talks to another kind, and imports nothing from the engine.

How a kind written against the previous contract is ported: ``controller/kinds/base.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from controller.contract.memory import Changes, KindMemory, Targeted
from controller.contract.plan import KindPlan, Operation, Ref
from controller.contract.status import GaugeFamily, KindStatus

if TYPE_CHECKING:
    from pydantic import BaseModel

    from controller.aws import AwsApi
    from controller.manifests import DesiredState, Manifest

LiveT = TypeVar("LiveT")


@dataclass(frozen=True, kw_only=True)
class Context:
    """What every step may know about where and when it runs.

    ``now`` is AWS's time (the host clock corrected by AWS's Date headers); ``desired`` is the
    whole revision in force, for a kind that reads what its manifests reference; ``memory`` is
    what this target's kinds keep between passes (None: nothing is kept, as in a test).
    """

    controller_id: str
    region: str
    now: datetime
    target: str = "default"
    desired: DesiredState | None = None
    memory: KindMemory | None = None


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something an applied operation did that the resources referencing it must hear of."""

    source: Ref


@dataclass(frozen=True, kw_only=True)
class DefaultVersionChanged(Event):
    """A versioned resource (a document, a package) has a new default version."""

    version: str


PLACEHOLDER = "REPLACE-ME"
"""What ``export`` writes where it cannot know a value: ``validate`` reports every string holding
it (file, line, field) and plan/apply refuse the manifest until it is filled in."""


@dataclass
class Exported:
    """One kind's live resources as desired state, for adopting an existing fleet.

    ``documents`` are manifests; ``files`` the files they name, by path relative to the manifests
    file (a Package's scripts and installers, read back from its zips); ``review`` what a person
    must check before applying (a made-up name, what could not be read back).
    """

    documents: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)


class Kind(ABC, Generic[LiveT]):
    kind: ClassVar[str]
    spec_model: ClassVar[type[BaseModel]]
    refers_to: ClassVar[frozenset[str]] = frozenset()  # kinds its manifests may reference
    implied: ClassVar[bool] = False  # never written in YAML; one per reference made to it
    gauges: ClassVar[tuple[GaugeFamily, ...]] = ()

    def references(self, manifest: Manifest, desired: DesiredState) -> list[Ref]:
        """The resources ``manifest`` depends on (each of a kind in ``refers_to``)."""
        return []

    @abstractmethod
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> LiveT:
        """Read the live state this kind compares against, in as few paginated calls as possible."""

    @abstractmethod
    def diff(self, desired: list[Manifest], live: LiveT, ctx: Context) -> KindPlan:
        """Pure: the operations that make live equal desired, and what was noticed on the way."""

    @abstractmethod
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> Sequence[Event]:
        """Carry out one operation this kind planned; the events its dependents must hear."""

    def observe_cached(self, desired: list[Manifest], ctx: Context) -> LiveT | None:
        """The live state from this kind's cache, without reading AWS; None when the kind keeps
        no cache or it is still cold (nothing observed yet)."""
        return None

    def observe_changes(
        self, aws: AwsApi, desired: list[Manifest], changes: Changes, ctx: Context
    ) -> Targeted[LiveT] | None:
        """Read only what ``changes`` names, fold it into the cache, and return the live state
        to diff, limited to what those resources touch; None when the changes are nothing to
        this kind (or it keeps no cache)."""
        return None

    def health(self, desired: list[Manifest], live: LiveT, ctx: Context) -> KindStatus:
        """Pure: each resource's health and the values of this kind's gauges."""
        return KindStatus()

    def on_dependency(
        self, aws: AwsApi, event: Event, dependents: list[Manifest], live: LiveT, ctx: Context
    ) -> None:
        """The hook on an edge into this kind: ``event`` happened to a resource that the
        ``dependents`` (manifests of this kind) reference; ``live`` is this pass's observation."""
        return None

    def after_dependents(self, aws: AwsApi, event: Event, ctx: Context) -> None:
        """Every dependent heard ``event`` (this kind emitted it): record it, if it must be."""
        return None

    def export(self, aws: AwsApi, ctx: Context) -> Exported:
        """Live resources of this kind as manifests (and their files), for adopting a fleet."""
        return Exported()


__all__ = [
    "PLACEHOLDER",
    "Context",
    "DefaultVersionChanged",
    "Event",
    "Exported",
    "Kind",
    "LiveT",
]
