"""Owned duplicates collapse to the one in use, as planned deletions with a reason (no --prune).

Duplicates come from a create whose answer arrived after the next observation, or from two
replicas acting at once. Associations: the one in use is kept (most instances reporting, then
one that has run, then the oldest, then the lowest id). Activations: only the published one is
kept; one never published is cleaned up. The detection document: content an older version already
holds is promoted, not sent again (AWS refuses it as DuplicateDocumentContent).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest

from controller.contract.plan import Action
from controller.detection import document as detection
from controller.kinds.association import (
    AssociationKind,
    AssociationLive,
    LiveAssociation,
    desired_request,
    in_use,
    normalize,
)
from tests.crash.fleet import (
    CONTROLLER_ID,
    OLD_EVALUATOR,
    OWNER,
    PARAMETER,
    PHASES,
    Target,
    converge,
    copy_example,
    create_fleet,
    plan_json,
    run_flow,
    snapshot,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CREATE_FIELDS = frozenset(
    botocore.session.get_session()
    .get_service_model("ssm")
    .operation_model("CreateAssociation")
    .input_shape.members
) - {"Tags"}


def _live(
    association_id: str,
    name: str = "install-acme",
    instances: int = 0,
    ran: bool = False,
    age_days: int = 0,
) -> LiveAssociation:
    return LiveAssociation(
        association_id=association_id,
        name=name,
        version="1",
        document="doc",
        schedule=None,
        overview={"AssociationStatusAggregatedCount": {"Success": instances}} if instances else {},
        tags={OWNER: CONTROLLER_ID, "fleet-controller/manifest": f"Association/{name}"},
        created=T0 - timedelta(days=age_days),
        last_execution=T0 if ran else None,
    )


# -- the rule (pure) ------------------------------------------------------------------------------


def test_the_one_most_instances_ran_is_kept_even_when_it_is_newer():
    older, newer = _live("a", instances=2, ran=True, age_days=9), _live("b", instances=50, ran=True)
    assert in_use([older, newer]) is newer
    pending = _live("c", age_days=30)
    pending.overview = {"AssociationStatusAggregatedCount": {"Pending": 50}}  # never ran
    assert in_use([pending, _live("d", instances=1, ran=True)]).association_id == "d"


def test_then_one_that_has_run_then_the_oldest_then_the_lowest_id():
    assert in_use([_live("a", age_days=9), _live("b", ran=True)]).association_id == "b"
    assert in_use([_live("a", age_days=1), _live("b", age_days=3)]).association_id == "b"
    assert in_use([_live("b"), _live("a")]).association_id == "a"
    undescribed = LiveAssociation("c", "install-acme", "1", "doc", None, {})
    assert in_use([undescribed, _live("d")]).association_id == "d"  # a known date is older


def test_duplicates_of_a_declared_manifest_are_deleted_without_prune_the_undeclared_are_pruned():
    live = [
        _live("a", instances=3),
        _live("b"),
        _live("c", name="gone"),
        _live("d", name="gone", age_days=2),
    ]
    manifest = _manifest("install-acme")
    ctx = _context(manifest)
    live[0].request = normalize(desired_request(manifest, ctx, None))  # in use, and up to date
    plan = AssociationKind().diff([manifest], AssociationLive(live), ctx)
    by_resource = {op.resource: op for op in plan.operations}
    assert sorted(by_resource) == ["b", "c", "d"]  # a is the one in use: kept
    duplicate = by_resource["b"]
    assert (duplicate.action, duplicate.prune) == (Action.DELETE, False)
    assert duplicate.reason == (
        "duplicate of a for this manifest; keeping that one (it has run on 3 instance(s), this one on 0)"
    )
    for undeclared in (by_resource["c"], by_resource["d"]):  # both, the one "in use" too
        assert (undeclared.action, undeclared.prune) == (Action.DELETE, True)
        assert undeclared.reason == "no manifest declares it any more"


def _manifest(name: str):
    """A package-less Association manifest named ``name`` (the live side is hand-built)."""
    from tests.kinds.builders import manifest

    return manifest(
        "Association",
        name,
        {"document": {"name": "AWS-GatherSoftwareInventory"}, "targets": {"tags": {"App": "x"}}},
    )


def _context(*manifests):
    from tests.kinds.builders import context

    return context(*manifests, controller_id=CONTROLLER_ID)


# -- against the sandbox ----------------------------------------------------------------------------


def _associations_named(target: Target, name: str) -> list[dict[str, Any]]:
    ssm = target.client("ssm")
    return [a for a in ssm.list_associations()["Associations"] if a.get("AssociationName") == name]


def _duplicate(target: Target, association_id: str) -> str:
    """What a second replica (or a create answered too late) leaves: the same association again,
    with the same owner and manifest tags."""
    ssm = target.client("ssm")
    description = ssm.describe_association(AssociationId=association_id)["AssociationDescription"]
    tags = ssm.list_tags_for_resource(ResourceType="Association", ResourceId=association_id)
    # Every field CreateAssociation takes that the description carries (botocore's model, not
    # the controller's list of compared fields: a field that list missed would still differ).
    request = {key: value for key, value in description.items() if key in CREATE_FIELDS}
    created = ssm.create_association(**request, Tags=tags["TagList"])
    return str(created["AssociationDescription"]["AssociationId"])


@pytest.mark.parametrize(
    ("agents_run", "why"),
    [(False, "it has run on 4 instance(s), this one on 0"), (True, "it is older")],
    ids=["duplicate-never-ran", "both-ran"],
)
def test_a_second_owned_association_for_a_manifest_is_collapsed_to_the_one_in_use(
    sandbox, tmp_path, reference, agents_run, why
):
    target = Target(sandbox.endpoint, sandbox.region)
    desired = copy_example(tmp_path / "desired")
    run_flow(target, desired, "main", until="update")  # created, tagged, installed once
    [original] = _associations_named(target, "install-contoso-notes")
    duplicate = _duplicate(target, original["AssociationId"])
    if agents_run:
        target.admin.post("agent/run", {})  # the duplicate runs too: same instances, both ran
    assert len(_associations_named(target, "install-contoso-notes")) == 2

    plan = plan_json(desired, target)
    [operation] = plan["operations"]
    assert operation["action"] == "delete" and operation["resource"] == duplicate
    assert operation["prune"] is False  # not an undeclared resource: no --prune needed
    assert operation["reason"] == (
        f"duplicate of {original['AssociationId']} for this manifest; keeping that one ({why})"
    )

    sandbox.admin.reset_calls()
    converge(desired, target)
    writes = {k: v for k, v in sandbox.admin.call_counts("ssm").items() if "Association" in k}
    assert writes.get("DeleteAssociation") == 1
    assert "UpdateAssociation" not in writes and "CreateAssociation" not in writes
    [kept] = _associations_named(target, "install-contoso-notes")
    assert kept["AssociationId"] == original["AssociationId"]
    assert snapshot(target) == reference[("main", "tag")]


def _orphan_activation(target: Target) -> str:
    """An owned activation for the manifest that was never published (its creator died)."""
    created = target.client("ssm").create_activation(
        IamRole="SSMServiceRole-WorkSpaces",
        RegistrationLimit=1000,
        DefaultInstanceName="workspace",
        Description="Hybrid activation for Amazon WorkSpaces",
        Tags=[
            {"Key": "Fleet", "Value": "workspaces"},
            {"Key": OWNER, "Value": CONTROLLER_ID},
            {"Key": "fleet-controller/manifest", "Value": "Activation/workspaces"},
        ],
    )
    return str(created["ActivationId"])


def test_a_second_owned_activation_that_was_never_published_is_deleted(
    sandbox, tmp_path, reference
):
    target = Target(sandbox.endpoint, sandbox.region)
    desired = copy_example(tmp_path / "desired")
    run_flow(target, desired, "main", until="tag")
    orphan = _orphan_activation(target)

    plan = plan_json(desired, target)
    [operation] = plan["operations"]
    assert (operation["kind"], operation["action"], operation["resource"]) == (
        "Activation",
        "delete",
        orphan,
    )
    assert operation["prune"] is False and "never published" in operation["reason"]
    converge(desired, target)
    assert snapshot(target) == reference[("main", "create")]


def test_two_owned_activations_none_published_are_replaced_by_one_published(
    sandbox, tmp_path, reference
):
    target = Target(sandbox.endpoint, sandbox.region)
    desired = copy_example(tmp_path / "desired")
    create_fleet(target)
    orphans = {_orphan_activation(target), _orphan_activation(target)}

    plan = plan_json(desired, target)
    activation_ops = [op for op in plan["operations"] if op["kind"] == "Activation"]
    assert [op["action"] for op in activation_ops] == ["create", "delete", "delete"]
    assert {op["resource"] for op in activation_ops[1:]} == orphans
    assert all(not op["prune"] for op in activation_ops)
    converge(desired, target)
    assert snapshot(target) == reference[("main", "create")]
    published = target.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)
    assert not any(orphan in published["Parameter"]["Value"] for orphan in orphans)


def test_an_evaluator_an_older_version_holds_is_promoted_not_sent_again(sandbox, tmp_path):
    target = Target(sandbox.endpoint, sandbox.region)
    desired = copy_example(tmp_path / "desired")
    run_flow(target, desired, "main", until="tag")
    ssm = target.client("ssm")
    name = detection.document_name(CONTROLLER_ID)
    # A hand edit (or another controller version) made another evaluator the default.
    ssm.update_document(Name=name, Content=OLD_EVALUATOR, DocumentVersion="$LATEST")
    ssm.update_document_default_version(Name=name, DocumentVersion="2")

    sandbox.admin.reset_calls()
    PHASES["create"].before(target, desired)
    passes = converge(desired, target)
    assert passes[0].code == 0, passes[0].stderr[-2000:]
    calls = sandbox.admin.call_counts("ssm")
    assert calls["UpdateDocument"] == 1  # refused: version 1 holds this content
    assert calls["UpdateDocumentDefaultVersion"] == 1
    versions = ssm.list_document_versions(Name=name)["DocumentVersions"]
    assert [(v["DocumentVersion"], v["IsDefaultVersion"]) for v in versions] == [
        ("1", True),
        ("2", False),
    ]
    assert ssm.describe_document(Name=name)["Document"]["Hash"] == detection.content_hash()
