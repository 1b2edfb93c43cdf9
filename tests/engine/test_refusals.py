"""Refusals are errors and dependencies block (issue 9, holes 3 and 4, and the truthful pass).

Each refusal a real account produces (someone else's parameter at the publish path, someone
else's association under a manifest's name, someone else's document under a Package's name or
under the detection document's name) fails
``plan`` in every format, with and without ``--detailed-exitcode``, and ``apply``; the plan never
says "No changes" beside one, and what depends on the refused resource is shown blocked, with why,
and not applied. A pass with anything refused, blocked, failed or deferred is not a success.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.detection import document as detection
from tests.engine.helpers import CONTROLLER_ID, PARAMETER, THEIR_DOCUMENT, cli, copy_example
from tests.packages.helpers import (
    BUCKET,
    association_yaml,
    controller,
    load,
    package_dir,
    writes,
)


def _packages(root: Path) -> Path:
    package_dir(root)
    (root / "install-acme.yaml").write_text(association_yaml("install-acme"))
    return root


def _their_parameter(sandbox, root: Path) -> Path:
    sandbox.client("ssm").put_parameter(Name=PARAMETER, Value="theirs", Type="String")
    return copy_example(root, only=("activation.yaml",))


def _their_association(sandbox, root: Path) -> Path:
    ssm = sandbox.client("ssm")
    ssm.create_document(
        Name="TheirDoc", Content=THEIR_DOCUMENT, DocumentType="Command", DocumentFormat="JSON"
    )
    ssm.create_association(
        Name="TheirDoc",
        AssociationName="install-acme",
        Targets=[{"Key": "tag:App", "Values": ["Theirs"]}],
    )
    return _packages(root)


def _their_document(sandbox, root: Path) -> Path:
    sandbox.client("ssm").create_document(
        Name="Acme", Content=THEIR_DOCUMENT, DocumentType="Command", DocumentFormat="JSON"
    )
    return _packages(root)


def _their_detection_document(sandbox, root: Path) -> Path:
    """Someone else's document under the name of this controller's detection document."""
    sandbox.client("ssm").create_document(
        Name=detection.document_name(CONTROLLER_ID),
        Content=THEIR_DOCUMENT,
        DocumentType="Command",
        DocumentFormat="JSON",
    )
    return _packages(root)


REFUSALS = {
    "parameter at the publish path": (_their_parameter, "Activation", "parameter"),
    "association name": (_their_association, "Association", "an association named"),
    "document name": (_their_document, "Package", "document Acme"),
    "detection document name": (
        _their_detection_document,
        "DetectionDocument",
        f"document {detection.document_name(CONTROLLER_ID)}",
    ),
}


@pytest.fixture(params=sorted(REFUSALS))
def refused(request, sandbox, tmp_path):
    make, kind, words = REFUSALS[request.param]
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    directory = make(sandbox, tmp_path / "desired")
    sandbox.admin.reset_calls()  # what the other owner did is not ours
    return directory, kind, words


@pytest.mark.parametrize("detailed", [False, True], ids=["plain", "detailed-exitcode"])
def test_a_refusal_fails_plan_in_every_format(sandbox, refused, detailed, capsys):
    directory, kind, words = refused
    extra = ["--detailed-exitcode"] if detailed else []
    for fmt in ("text", "markdown", "json"):
        capsys.readouterr()
        assert cli(sandbox, "plan", str(directory), "--format", fmt, *extra) == 1, fmt
        out = capsys.readouterr().out
        assert "No changes. Live state matches" not in out, (fmt, out)
        if fmt == "json":
            document = json.loads(out)
            assert document["summary"]["ok"] is False and document["summary"]["refused"] == 1
            [finding] = [f for f in document["findings"] if f["severity"] == "error"]
            assert finding["kind"] == kind and words in finding["message"]
        else:
            assert "1 refused" in out and words in out, (fmt, out)
    assert writes(sandbox) == {}


def test_a_refusal_fails_apply_and_the_rest_is_still_applied(sandbox, refused, capsys):
    directory, kind, _ = refused
    assert cli(sandbox, "apply", str(directory)) == 1
    out = capsys.readouterr().out
    assert "No changes. Live state matches" not in out
    made = writes(sandbox)
    if kind == "Activation":
        assert made == {}  # the one resource was refused: nothing else to do
    else:
        assert made.get("ssm:CreateDocument") == (2 if kind == "Association" else 1), made
    assert cli(sandbox, "apply", str(directory)) == 1  # and it stays an error


def test_a_refused_package_gets_no_association_and_says_why_in_every_format(
    sandbox, tmp_path, capsys
):
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    directory = _their_document(sandbox, tmp_path / "desired")
    why = "depends on Package/acme, which was refused"
    capsys.readouterr()
    assert cli(sandbox, "plan", str(directory)) == 1
    text = capsys.readouterr().out
    assert "Blocked (not applied)" in text and f"Association/install-acme (new): {why}" in text
    assert cli(sandbox, "plan", str(directory), "--format", "markdown") == 1
    markdown = capsys.readouterr().out
    assert "#### Blocked (not applied)" in markdown and why in markdown
    assert cli(sandbox, "plan", str(directory), "--format", "json") == 1
    [blocked] = json.loads(capsys.readouterr().out)["blocked"]
    assert (blocked["kind"], blocked["name"], blocked["why"]) == (
        "Association",
        "install-acme",
        why,
    )

    assert cli(sandbox, "apply", str(directory)) == 1
    assert "ssm:CreateAssociation" not in writes(sandbox)
    assert sandbox.client("ssm").list_associations()["Associations"] == []
    # The other owner's document is untouched.
    assert sandbox.client("ssm").describe_document(Name="Acme")["Document"]["DocumentType"] == (
        "Command"
    )


def _sample(reconciler, name: str, **labels: str) -> float | None:
    labels = {"target": "default", **labels}
    return reconciler.metrics.registry.get_sample_value(name, labels)


def test_a_failed_dependency_blocks_its_dependents_and_the_pass_is_no_success(sandbox, tmp_path):
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    root = _packages(tmp_path / "desired")
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "CreateDocument", "deny_rate": 1, "body_contains": "Acme"}]
    )
    reconciler = controller(sandbox)
    sandbox.admin.reset_calls()
    plan, result = reconciler.reconcile(load(root))
    assert plan.ok  # nothing refused at plan time
    assert [op.kind for op, _ in result.failed] == ["Package"]
    [blocked] = result.blocked
    assert blocked.operation.name == "install-acme"
    assert blocked.why == "depends on Package/acme, which failed in this pass"
    assert "ssm:CreateAssociation" not in writes(sandbox)
    assert _sample(reconciler, "fleet_reconciles_total", result="error") == 1
    assert _sample(reconciler, "fleet_reconciles_total", result="success") == 0
    assert _sample(reconciler, "fleet_last_successful_reconcile_timestamp_seconds") is None
    assert _sample(reconciler, "fleet_refused_resources", kind="Association", state="blocked") == 1
    assert _sample(reconciler, "fleet_drifted_resources", kind="Association") == 1

    sandbox.admin.set_faults([])
    _, result = reconciler.reconcile(load(root))
    assert result.ok and result.blocked == []
    assert sorted(op.kind for op in result.applied) == ["Association", "Package"]
    assert _sample(reconciler, "fleet_reconciles_total", result="success") == 1
    assert _sample(reconciler, "fleet_last_successful_reconcile_timestamp_seconds") is not None
    assert _sample(reconciler, "fleet_refused_resources", kind="Association", state="blocked") == 0


def test_apply_exits_1_when_an_operation_failed_and_its_dependents_were_blocked(
    sandbox, tmp_path, capsys
):
    """README, Commands: apply exits 1 on any failure or blocked operation, though the plan
    itself refused nothing (what the CLI says, not only what the reconciler returns)."""
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    root = _packages(tmp_path / "desired")
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "CreateDocument", "deny_rate": 1, "body_contains": "Acme"}]
    )
    assert cli(sandbox, "apply", str(root)) == 1
    captured = capsys.readouterr()
    assert "1 failed, 1 blocked" in captured.out
    logged = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    said = {(e["event"], e["kind"], e["name"]) for e in logged if "kind" in e}
    assert ("operation failed", "Package", "acme") in said
    assert ("operation blocked", "Association", "install-acme") in said
    sandbox.admin.set_faults([])
    assert cli(sandbox, "apply", str(root)) == 0  # the same command, once nothing fails


def test_a_pass_whose_operations_are_all_held_back_is_no_success(sandbox, tmp_path):
    """Issue 9, hole 8: operations deferred by backoff used to count as a successful pass."""
    from controller.engine.backoff import BackoffSettings, ResourceBackoff

    directory = copy_example(tmp_path / "desired", only=("activation.yaml",))
    reconciler = controller(sandbox)
    reconciler.backoff = ResourceBackoff(BackoffSettings(jitter_fraction=0), clock=lambda: 0.0)
    sandbox.admin.set_faults([{"service": "ssm", "operation": "CreateActivation", "deny_rate": 1}])
    for _ in range(2):  # two failures: the next attempt waits a minute
        _, result = reconciler.reconcile(load(directory))
        assert result.failed
    _, held = reconciler.reconcile(load(directory))
    assert held.failed == [] and len(held.deferred) == 1 and not held.ok
    assert _sample(reconciler, "fleet_reconciles_total", result="success") == 0
    assert _sample(reconciler, "fleet_reconciles_total", result="error") == 3
    assert _sample(reconciler, "fleet_last_successful_reconcile_timestamp_seconds") is None


def test_a_refusal_makes_the_run_pass_no_success_and_is_exported(sandbox, tmp_path):
    directory = _their_parameter(sandbox, tmp_path / "desired")
    reconciler = controller(sandbox)
    plan, result = reconciler.reconcile(load(directory))
    assert not plan.ok and result.ok  # nothing failed; still not a success
    assert _sample(reconciler, "fleet_reconciles_total", result="error") == 1
    assert _sample(reconciler, "fleet_last_successful_reconcile_timestamp_seconds") is None
    assert _sample(reconciler, "fleet_refused_resources", kind="Activation", state="refused") == 1
