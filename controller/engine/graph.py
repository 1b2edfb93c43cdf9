"""The dependency graph of one pass: which resource references which, and the apply waves.

Nodes are ``Ref``s (a kind and a manifest name); edges come from ``Kind.references``, each to a
kind the referencing kind declares in ``refers_to`` (gitops-engine's sync waves, derived instead of
numbered by hand). A resource's wave is one more than the deepest wave it references, so a Package
is published, and the detection document created, before the Associations that install it.

Deletes run after every create and update, in the reverse order: a pruned resource has no manifest
(so no edges), and the kind graph orders them instead, the kinds that reference others first, so
an Association is deleted before the Package it installs.

Implied resources (``Kind.implied``: the detection document) get one synthetic manifest per
reference made to them, so they are observed, diffed and ordered like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.contract import Action, Kind, Operation, Ref
from controller.manifests import DesiredState, Manifest, SourceLocation

_ACTION_ORDER = {Action.CREATE: 0, Action.REPLACE: 1, Action.UPDATE: 2, Action.DELETE: 3}


class GraphError(ValueError):
    """A manifest references a kind its kind does not declare, or resources form a cycle."""


@dataclass
class Graph:
    kinds: Sequence[Kind[Any]]  # in registry order: each after the kinds it refers to
    desired: dict[str, list[Manifest]] = field(default_factory=dict)  # by kind, implied included
    references: dict[Ref, tuple[Ref, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, kinds: Sequence[Kind[Any]], state: DesiredState | None) -> Graph:
        graph = cls(list(kinds))
        if state is None:
            return graph
        for kind in kinds:
            if not kind.implied:
                graph.desired[kind.kind] = state.of_kind(kind.kind)
        implied = {kind.kind: kind for kind in kinds if kind.implied}
        for kind in kinds:
            for manifest in graph.desired.get(kind.kind, []):
                refs = tuple(kind.references(manifest, state))
                stray = sorted({r.kind for r in refs} - kind.refers_to)
                if stray:
                    raise GraphError(
                        f"{manifest.ref} references {stray}, which {kind.kind}.refers_to omits"
                    )
                graph.references[Ref(manifest.kind, manifest.name)] = refs
                for ref in refs:
                    if ref.kind in implied:
                        graph._imply(implied[ref.kind], ref, manifest)
        for node in list(graph.references):
            graph.wave(node)  # raises on a cycle
        return graph

    def _imply(self, kind: Kind[Any], ref: Ref, by: Manifest) -> None:
        manifests = self.desired.setdefault(kind.kind, [])
        if any(m.name == ref.name for m in manifests):
            return
        spec = kind.spec_model.model_validate({})
        where = SourceLocation(f"(implied by {by.ref})", by.source.line)
        manifests.append(Manifest(kind.kind, ref.name, {}, spec, where))

    def of_kind(self, kind: str) -> list[Manifest]:
        return self.desired.get(kind, [])

    def refs_of(self, node: Ref) -> tuple[Ref, ...]:
        return self.references.get(node, ())

    def dependents(self, node: Ref) -> list[Ref]:
        return sorted(n for n, refs in self.references.items() if node in refs)

    def wave(self, node: Ref, seen: frozenset[Ref] = frozenset()) -> int:
        if node in seen:
            raise GraphError(f"resources reference each other in a cycle through {node}")
        refs = self.refs_of(node)
        return 1 + max(self.wave(r, seen | {node}) for r in refs) if refs else 0

    def closure(self, roots: Iterable[Ref]) -> dict[Ref, Ref]:
        """Every resource that depends, directly or not, on one of ``roots``: -> that root."""
        found: dict[Ref, Ref] = {}
        pending = [(root, root) for root in roots]
        while pending:
            node, root = pending.pop()
            for dependent in self.dependents(node):
                if dependent not in found:
                    found[dependent] = root
                    pending.append((dependent, root))
        return found

    # -- ordering ------------------------------------------------------------------------------

    def _phase_key(self, operation: Operation) -> tuple[int, ...]:
        index = self._kind_index()
        position = index.get(operation.kind, len(index))
        if operation.action is Action.DELETE:
            # After every create and update; kinds that reference others first.
            return (1, -position, 0)
        return (0, self.wave(operation.ref), position, _ACTION_ORDER[operation.action])

    def _kind_index(self) -> Mapping[str, int]:
        return {kind.kind: i for i, kind in enumerate(self.kinds)}

    def order(self, operations: Sequence[Operation]) -> list[Operation]:
        """Waves in order, within a wave kinds in registry order, then creates, replaces,
        updates; then deletes in reverse. Stable, so a kind's own order survives."""
        return sorted(operations, key=self._phase_key)

    def phases(self, operations: Sequence[Operation]) -> list[list[Operation]]:
        """Consecutive runs of one key: the units whose operations may run concurrently."""
        phases: list[list[Operation]] = []
        previous: tuple[int, ...] | None = None
        for operation in self.order(operations):
            key = self._phase_key(operation)
            if key != previous:
                phases.append([])
                previous = key
            phases[-1].append(operation)
        return phases


__all__ = ["Graph", "GraphError"]
