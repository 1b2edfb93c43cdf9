"""Publishing packages through the engine against the sandbox (real zips, real S3 in moto)."""

from __future__ import annotations

import pytest

from controller.contract.plan import Action
from tests.packages.helpers import (
    ACME_EFFECTS,
    BUCKET,
    add_instance,
    admin_get,
    agent_state,
    association_yaml,
    controller,
    load,
    package_dir,
    run_agents,
    writes,
)


def _versions(sandbox, name="Acme"):
    return sandbox.client("ssm").list_document_versions(Name=name)["DocumentVersions"]


def _default(sandbox, name="Acme"):
    return sandbox.client("ssm").describe_document(Name=name)["Document"]


@pytest.fixture
def published(sandbox, tmp_path):
    """Acme published, installed through its association on two instances."""
    root = tmp_path / "desired"
    package_dir(root, keep=3)
    (root / "association.yaml").write_text(association_yaml("install-acme"))
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    instances = [add_instance(n, {"App": "Acme"}) for n in (1, 2)]
    sandbox.admin.post("agent/effects", {"package": "Acme", "effects": ACME_EFFECTS})
    reconciler = controller(sandbox)
    sandbox.admin.reset_calls()
    _plan, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    first = writes(sandbox)
    assert first == {
        "s3:PutObject": 1,
        "ssm:CreateDocument": 2,  # the package and the detection document
        "ssm:CreateAssociation": 1,
    }
    runs = run_agents(sandbox)
    assert sorted(r["instanceId"] for r in runs) == instances
    assert {r["status"] for r in runs} == {"Success"}
    return root, reconciler, instances


def test_a_second_apply_uploads_nothing_and_creates_no_version(sandbox, published):
    root, reconciler, _ = published
    sandbox.admin.reset_calls()
    plan, result = reconciler.reconcile(load(root))
    assert plan.operations == [] and result.applied == []
    assert writes(sandbox) == {}
    assert len(_versions(sandbox)) == 1
    objects = sandbox.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    assert len(objects) == 1


def test_changing_one_file_creates_one_version_promotes_it_and_runs_once(sandbox, published):
    root, reconciler, instances = published
    (root / "acme" / "app.msi").write_bytes(b"acme payload, patched")
    sandbox.admin.reset_calls()
    plan, result = reconciler.reconcile(load(root))
    assert [(op.kind, op.action) for op in plan.operations] == [("Package", Action.UPDATE)]
    assert result.ok, result.failed
    assert writes(sandbox) == {
        "s3:PutObject": 1,
        "ssm:UpdateDocument": 1,
        "ssm:UpdateDocumentDefaultVersion": 1,
        "ssm:StartAssociationsOnce": 1,
        "ssm:AddTagsToResource": 1,  # the document records that version 2's followers started
    }
    versions = _versions(sandbox)
    assert len(versions) == 2
    default = _default(sandbox)
    assert default["DefaultVersion"] == "2"
    # The version did not change in the manifest, so the new content gets a suffixed name.
    assert default["VersionName"].startswith("1.0.0-") and len(default["VersionName"]) == 14
    assert any("bump spec.version" in f.message for f in plan.findings)

    runs = run_agents(sandbox)
    assert sorted(r["instanceId"] for r in runs) == instances  # once per instance
    assert {r["status"] for r in runs} == {"Success"}
    assert agent_state(sandbox, instances[0])["distributorPackages"] == {
        "Acme": default["VersionName"]
    }
    assert run_agents(sandbox) == []  # and only once

    sandbox.admin.reset_calls()
    plan, _ = reconciler.reconcile(load(root))
    assert plan.operations == [] and writes(sandbox) == {}


def test_a_new_version_number_names_the_new_version(sandbox, published, tmp_path):
    root, reconciler, _ = published
    package_dir(root, keep=3, version="1.1.0", payload=b"acme payload 1.1")
    plan, result = reconciler.reconcile(load(root))
    assert result.ok
    assert _default(sandbox)["VersionName"] == "1.1.0"
    assert not any("bump" in f.message for f in plan.findings)


def test_the_26th_version_never_happens_old_versions_are_pruned(sandbox, published):
    root, reconciler, _ = published
    keep = 3
    for change in range(keep + 3):
        package_dir(root, keep=keep, version=f"1.0.{change + 1}", payload=b"v%d" % change)
        _plan, result = reconciler.reconcile(load(root))
        assert result.ok, result.failed
        assert len(_versions(sandbox)) <= keep
    versions = _versions(sandbox)
    assert [v["VersionName"] for v in versions] == ["1.0.4", "1.0.5", "1.0.6"]
    assert [v["IsDefaultVersion"] for v in versions] == [False, False, True]


def test_lowering_keep_versions_prunes_without_a_new_version(sandbox, published):
    root, reconciler, _ = published
    for change in range(2):
        package_dir(root, keep=3, version=f"1.0.{change + 1}", payload=b"v%d" % change)
        reconciler.reconcile(load(root))
    assert len(_versions(sandbox)) == 3
    package_dir(root, keep=1, version="1.0.2", payload=b"v1")
    sandbox.admin.reset_calls()
    plan, _result = reconciler.reconcile(load(root))
    assert [op.reason for op in plan.operations] == ["2 version(s) beyond keepVersions 1"]
    assert writes(sandbox) == {"ssm:DeleteDocument": 2}
    assert [v["VersionName"] for v in _versions(sandbox)] == ["1.0.2"]


def test_a_package_document_owned_by_someone_else_is_left_alone(sandbox, tmp_path):
    from tests.sandbox._ssm_helpers import publish_package

    publish_package(sandbox, "Acme", "0.9.0")
    root = tmp_path / "desired"
    package_dir(root)
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = controller(sandbox)
    sandbox.admin.reset_calls()
    plan, _ = reconciler.reconcile(load(root))
    assert plan.operations == []
    assert any("not a Package owned by this controller" in f.message for f in plan.findings)
    assert writes(sandbox) == {}


def test_runs_are_counted_per_association(sandbox, published):
    counts = admin_get(sandbox, "agent/runs")["counts"]
    assert list(counts.values()) == [2]


def test_keep_versions_25_stays_under_the_aws_limit(sandbox, published):
    root, reconciler, _ = published
    for change in range(26):
        package_dir(root, keep=25, version=f"2.0.{change}", payload=b"w%d" % change)
        _plan, result = reconciler.reconcile(load(root))
        assert result.ok, result.failed
    versions = _versions(sandbox)
    assert len(versions) == 25
    assert versions[-1]["VersionName"] == "2.0.25" and versions[-1]["IsDefaultVersion"]


def test_another_controllers_package_documents_are_never_pruned(sandbox, published):
    """Pruning lists only Package documents carrying this controller's owner tag: another
    controller's (with a manifest tag naming a manifest we do not declare) stays."""
    from controller.contract import MANIFEST_TAG, OWNER_TAG
    from tests.packages.helpers import CONTROLLER_ID
    from tests.sandbox._ssm_helpers import publish_package

    root, _, _ = published
    publish_package(sandbox, "TheirViewer", "1.0.0")
    ssm = sandbox.client("ssm")
    ssm.add_tags_to_resource(
        ResourceType="Document",
        ResourceId="TheirViewer",
        Tags=[
            {"Key": OWNER_TAG, "Value": "another-controller"},
            {"Key": MANIFEST_TAG, "Value": "Package/their-viewer"},
        ],
    )
    pruning = controller(sandbox, prune=True, max_deletes=50)
    assert pruning.settings.controller_id == CONTROLLER_ID
    sandbox.admin.reset_calls()
    plan, result = pruning.reconcile(load(root))
    assert result.ok and plan.refused == []
    assert [op for op in plan.operations if op.action is Action.DELETE] == []
    assert "ssm:DeleteDocument" not in writes(sandbox)
    assert ssm.describe_document(Name="TheirViewer")["Document"]["Status"] == "Active"
