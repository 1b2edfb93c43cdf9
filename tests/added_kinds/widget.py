"""A kind that only loads: a spec with a field-level and a whole-set check, no AWS at all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.kinds.base import Context, Event, Kind, KindPlan, Operation
from controller.manifests import Manifest, ManifestError, SpecModel


class WidgetSpec(SpecModel):
    size: int
    color: str = "blue"

    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        widgets = by_kind.get("Widget", [])
        return [
            w.spec_error(("color",), "only one red widget")
            for w in widgets[1:]
            if w.spec.color == "red"
        ]


class WidgetKind(Kind[None]):
    kind = "Widget"
    spec_model = WidgetSpec

    def observe(self, aws: object, desired: list[Manifest], ctx: Context) -> None:
        return None

    def diff(self, desired: list[Manifest], live: None, ctx: Context) -> KindPlan:
        return KindPlan()

    def apply(self, aws: object, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        return ()
