"""The dependency graph against the sandbox: apply waves, deletes in reverse, the edge's hook.

An Association that installs a Package references it (and the detection document): it is created
after them, deleted before them, and blocked when one of them is refused. The order is read from
the AWS calls the controller actually makes, in the order it makes them.
"""

from __future__ import annotations

from pathlib import Path

from controller.contract import Action
from controller.detection.document import document_name
from tests.engine.helpers import THEIR_DOCUMENT
from tests.packages.helpers import (
    BUCKET,
    CONTROLLER_ID,
    association_yaml,
    controller,
    load,
    package_dir,
    writes,
)

WRITES = {
    "CreateDocument",
    "CreateAssociation",
    "DeleteAssociation",
    "DeleteDocument",
    "UpdateDocument",
    "UpdateDocumentDefaultVersion",
    "StartAssociationsOnce",
}


def _two_packages(root: Path) -> Path:
    for name, package in (("acme", "Acme"), ("beta", "Beta")):
        package_dir(root, name=name, package=package)
        (root / f"install-{name}.yaml").write_text(association_yaml(f"install-{name}", name))
    return root


def _calls_in_order(reconciler) -> list[str]:
    seen: list[str] = []
    reconciler.aws.recorder.subscribe(
        lambda service, operation, outcome: seen.append(operation) if operation in WRITES else None
    )
    return seen


def test_a_new_package_and_its_association_are_created_in_that_order(sandbox, tmp_path):
    root = _two_packages(tmp_path / "desired")
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = controller(sandbox, prune=True)
    seen = _calls_in_order(reconciler)
    plan, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    kinds = [op.kind for op in plan.operations]
    assert kinds == ["DetectionDocument", "Package", "Package", "Association", "Association"]
    assert seen.index("CreateAssociation") > max(
        i for i, name in enumerate(seen) if name == "CreateDocument"
    ), seen


def test_a_pruning_plan_deletes_associations_before_the_package_they_install(sandbox, tmp_path):
    root = _two_packages(tmp_path / "desired")
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = controller(sandbox, prune=True)
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    for path in (root / "acme", root / "install-acme.yaml"):
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        else:
            path.unlink()

    seen = _calls_in_order(reconciler)
    sandbox.admin.reset_calls()
    plan, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    assert [(op.kind, op.action) for op in plan.operations] == [
        ("Association", Action.DELETE),
        ("Package", Action.DELETE),
    ]
    assert seen == ["DeleteAssociation", "DeleteDocument"]
    assert writes(sandbox) == {"ssm:DeleteAssociation": 1, "ssm:DeleteDocument": 1}
    names = [d["Name"] for d in sandbox.client("ssm").list_documents()["DocumentIdentifiers"]]
    assert "Acme" not in names and "Beta" in names


def test_a_refused_detection_document_blocks_every_package_association(sandbox, tmp_path):
    root = _two_packages(tmp_path / "desired")
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    sandbox.client("ssm").create_document(  # someone else's document under the controller's name
        Name=document_name(CONTROLLER_ID),
        Content=THEIR_DOCUMENT,
        DocumentType="Command",
        DocumentFormat="JSON",
    )
    plan = controller(sandbox).plan(load(root))
    [refusal] = [f for f in plan.findings if f.severity.value == "error"]
    assert (refusal.kind, refusal.name) == ("DetectionDocument", "detection-document")
    assert [op.kind for op in plan.operations] == ["Package", "Package"]
    assert sorted(b.operation.name for b in plan.blocked) == ["install-acme", "install-beta"]
    assert all("DetectionDocument/detection-document" in b.why for b in plan.blocked)


def test_the_new_default_is_heard_by_its_followers_only(sandbox, tmp_path):
    """The Package -> Association edge's hook starts the associations that install the package
    at "latest", and no other (not beta's, not one pinned to a version)."""
    root = _two_packages(tmp_path / "desired")
    (root / "pinned-acme.yaml").write_text(
        association_yaml("pinned-acme", "acme").replace(
            "package: {name: acme}", "package: {name: acme, version: 1.0.0}"
        )
    )
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = controller(sandbox)
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    (root / "acme" / "app.msi").write_bytes(b"acme payload, patched")
    started: list[list[str]] = []
    names = {
        a["AssociationId"]: a["AssociationName"]
        for a in sandbox.client("ssm").list_associations()["Associations"]
    }
    assert sorted(names.values()) == ["install-acme", "install-beta", "pinned-acme"]

    original = reconciler.aws.call

    def spy(service, operation, **params):
        if operation == "StartAssociationsOnce":
            started.append(sorted(names[i] for i in params["AssociationIds"]))
        return original(service, operation, **params)

    reconciler.aws.call = spy
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    assert started == [["install-acme"]]
