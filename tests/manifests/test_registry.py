"""Kinds register themselves; a new kind plugs into loading and cross-set checks unchanged."""

from __future__ import annotations

import pkgutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

import controller.manifests.specs as specs
from controller.manifests import (
    InvalidDesiredState,
    Manifest,
    ManifestError,
    SpecModel,
    kinds,
    load_desired_state,
    register_kind,
)
from controller.manifests.registry import unregister_kind


def test_every_spec_module_registers_a_kind() -> None:
    registered = {info.spec_model.__module__ for info in kinds().values()}
    modules = {f"{specs.__name__}.{m.name}" for m in pkgutil.iter_modules(specs.__path__)}
    assert modules <= registered
    assert {"Activation", "TagSync"} <= set(kinds())


class WidgetSpec(SpecModel):
    size: int
    color: str = "blue"


def check_widgets(by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
    widgets = by_kind.get("Widget", [])
    return [w.spec_error(("color",), "only one red widget") for w in widgets[1:]
            if w.spec.color == "red"]  # fmt: skip


@pytest.fixture
def widget_kind() -> Iterator[None]:
    register_kind("Widget", WidgetSpec, check_widgets)
    yield
    unregister_kind("Widget")


DOC = """\
apiVersion: fleet-controller/v1alpha1
kind: Widget
metadata:
  name: {name}
spec:
  size: 3
  color: red
"""


def test_a_registered_kind_loads_and_its_set_check_runs(widget_kind: None, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DOC.format(name="one"))
    state = load_desired_state(tmp_path)
    (widget,) = state.of_kind("Widget")
    assert widget.spec_as(WidgetSpec).size == 3

    (tmp_path / "b.yaml").write_text(DOC.format(name="two"))
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    (error,) = raised.value.errors
    assert (error.file, error.line, error.field) == (str(tmp_path / "b.yaml"), 7, "spec.color")
    assert error.kind == "Widget" and error.name == "two"


def test_unknown_kind_lists_the_registered_ones(widget_kind: None, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DOC.format(name="one").replace("Widget", "Gadget"))
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    (error,) = raised.value.errors
    assert error.field == "kind" and "unknown kind 'Gadget'" in error.message
    assert ", ".join(sorted(kinds())) in error.message  # Widget included


def test_registration_refuses_bad_or_conflicting_kinds(widget_kind: None) -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        register_kind("widget", WidgetSpec)

    class OtherSpec(SpecModel):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_kind("Widget", OtherSpec)
