"""Adding a kind is one module: ``tests/added_kinds/note.py`` dropped into the kinds package.

Nothing else is touched: the loader validates its manifests, the CLI counts them, the engine
observes, diffs, orders it after the Activation it references (and blocks it when that one is
refused), applies its typed steps, and turns its health into findings and metrics, the gauge it
declares included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.cli import main
from controller.contract import Action, Severity
from tests.engine.helpers import PARAMETER, controller, copy_example, load, write
from tests.kindkit import added_kind

ROOT = Path(__file__).resolve().parents[2]
NOTE = """\
apiVersion: fleet-controller/v1alpha1
kind: Note
metadata: {name: welcome}
spec: {text: hello, activation: workspaces}
"""


@pytest.fixture
def note_kind(tmp_path: Path) -> Iterator[None]:
    with added_kind("note", tmp_path):
        yield


@pytest.fixture
def desired(tmp_path: Path) -> Path:
    return write(copy_example(tmp_path / "desired", only=("activation.yaml",)), "note.yaml", NOTE)


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_nothing_in_the_controller_knows_the_added_kind() -> None:
    for path in (ROOT / "controller").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "note_length" not in text and '"Note"' not in text, path


def test_its_manifests_are_validated_and_counted(note_kind, desired, capsys) -> None:
    assert main(["validate", str(desired)]) == 0
    assert "1 Note" in capsys.readouterr().out
    write(desired, "note.yaml", NOTE.replace("activation: workspaces", "activation: nope"))
    assert main(["validate", str(desired)]) == 1
    err = capsys.readouterr().err
    assert "note.yaml:4" in err and "spec.activation" in err and "no Activation named 'nope'" in err


def test_it_is_planned_after_what_it_references_applied_and_reported(
    sandbox, note_kind, desired
) -> None:
    reconciler = controller(sandbox)
    plan, result = reconciler.reconcile(load(desired))
    assert result.ok, result.failed
    assert [(op.kind, op.action) for op in plan.operations] == [
        ("Activation", Action.CREATE),
        ("Note", Action.CREATE),
    ]
    ssm = sandbox.client("ssm")
    assert (
        ssm.get_parameter(Name="/fleet-controller/notes/welcome")["Parameter"]["Value"] == "hello"
    )

    plan, _ = reconciler.reconcile(load(desired))
    assert plan.operations == []
    text = reconciler.metrics.text()
    assert _sample(text, "fleet_note_length_chars", note="welcome") == 5
    assert _sample(text, "fleet_resources", kind="Note", health="Healthy") == 1
    assert _sample(text, "fleet_managed_resources", kind="Note") == 1

    ssm.put_parameter(Name="/fleet-controller/notes/welcome", Value="tampered", Overwrite=True)
    plan = reconciler.plan(load(desired))
    [operation] = plan.operations
    assert (operation.action, operation.changes[0].before) == (Action.UPDATE, "tampered")
    [finding] = [f for f in plan.findings if f.kind == "Note"]
    assert finding.severity is Severity.WARNING and "tampered" in finding.message
    text = reconciler.metrics.text()
    assert _sample(text, "fleet_resources", kind="Note", health="Degraded") == 1
    assert _sample(text, "fleet_note_length_chars", note="welcome") == 8


def test_it_is_blocked_when_the_activation_it_references_is_refused(
    sandbox, note_kind, desired
) -> None:
    sandbox.client("ssm").put_parameter(Name=PARAMETER, Value="theirs", Type="String")
    plan = controller(sandbox).plan(load(desired))
    assert [(f.kind, f.severity) for f in plan.errors] == [("Activation", Severity.ERROR)]
    assert plan.operations == []
    [blocked] = plan.blocked
    assert blocked.operation.kind == "Note"
    assert "Activation/workspaces" in blocked.why
