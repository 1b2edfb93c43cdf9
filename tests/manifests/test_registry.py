"""One registry: a kind names its spec model; a kind added as one module loads and is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.contract import Kind, registry
from controller.manifests import InvalidDesiredState, SpecModel, load_desired_state
from tests.kindkit import added_kind


def test_every_kind_names_a_spec_model_and_every_spec_module_has_a_kind() -> None:
    import pkgutil

    import controller.manifests.specs as specs

    kinds = registry.registered()
    assert {"Activation", "TagSync", "Package", "Association"} <= {k.kind for k in kinds}
    named = {k.spec_model.__module__ for k in kinds}
    modules = {f"{specs.__name__}.{m.name}" for m in pkgutil.iter_modules(specs.__path__)}
    assert modules <= named
    assert all(issubclass(k.spec_model, SpecModel) for k in kinds)
    assert "DetectionDocument" not in registry.spec_models()  # implied: never in YAML


def test_each_kind_comes_after_the_kinds_it_refers_to() -> None:
    order = [k.kind for k in registry.registered()]
    for kind in registry.registered():
        for other in kind.refers_to:
            assert order.index(other) < order.index(kind.kind)
    assert registry.depth("Association") == 1 and registry.depth("Package") == 0


@pytest.fixture
def widget_kind(tmp_path: Path) -> Iterator[None]:
    with added_kind("widget", tmp_path):
        yield


DOC = """\
apiVersion: fleet-controller/v1alpha1
kind: Widget
metadata:
  name: {name}
spec:
  size: 3
  color: red
"""


def test_an_added_kind_loads_and_its_set_check_runs(widget_kind: None, tmp_path: Path) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "a.yaml").write_text(DOC.format(name="one"))
    state = load_desired_state(desired)
    (widget,) = state.of_kind("Widget")
    assert widget.spec.size == 3

    (desired / "b.yaml").write_text(DOC.format(name="two"))
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(desired)
    (error,) = raised.value.errors
    assert (error.file, error.line, error.field) == (str(desired / "b.yaml"), 7, "spec.color")
    assert error.kind == "Widget" and error.name == "two"


def test_unknown_kind_lists_the_registered_ones(widget_kind: None, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(DOC.format(name="one").replace("Widget", "Gadget"))
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    (error,) = raised.value.errors
    assert error.field == "kind" and "unknown kind 'Gadget'" in error.message
    assert ", ".join(sorted(registry.spec_models())) in error.message
    assert "Widget" in error.message


def test_an_implied_kind_cannot_be_written_in_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: fleet-controller/v1alpha1\nkind: DetectionDocument\n"
        "metadata: {name: mine}\nspec: {}\n"
    )
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    assert "unknown kind 'DetectionDocument'" in raised.value.errors[0].message


def _kind_module(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(
        "from controller.kinds.base import Kind, KindPlan\n"
        "from controller.manifests import SpecModel\n\n\n"
        "class S(SpecModel):\n    pass\n\n\n" + body
    )


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("class K(Kind[None]):\n    kind = 'TagSync'\n    spec_model = S\n", "defined twice"),
        ("class K(Kind[None]):\n    kind = 'lower'\n    spec_model = S\n", "CamelCase"),
        ("class K(Kind[None]):\n    kind = 'Nameless'\n", "names no spec model"),
        (
            "class K(Kind[None]):\n    kind = 'Dangling'\n    spec_model = S\n"
            "    refers_to = frozenset({'Nowhere'})\n",
            "unknown kind",
        ),
    ],
)
def test_the_registry_refuses_a_bad_kind(tmp_path: Path, body: str, complaint: str) -> None:
    import sys

    import controller.kinds

    body += (
        "    def observe(self, aws, desired, ctx): return None\n"
        "    def diff(self, desired, live, ctx): return KindPlan()\n"
        "    def apply(self, aws, operation, ctx): return ()\n"
    )
    _kind_module(tmp_path, "broken_kind", body)
    controller.kinds.__path__.append(str(tmp_path))
    registry.rediscover()
    try:
        with pytest.raises(registry.RegistryError, match=complaint):
            registry.registered()
    finally:
        controller.kinds.__path__.remove(str(tmp_path))
        sys.modules.pop("controller.kinds.broken_kind", None)
        registry.rediscover()
    assert isinstance(registry.kind_named("TagSync"), Kind)
