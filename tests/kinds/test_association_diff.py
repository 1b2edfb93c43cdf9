"""Association's diff, called with hand-built live associations (controller/kinds/association.py).

Every UpdateAssociation re-runs the install on the whole fleet, so the cases that matter most are
the equal ones: spellings AWS gives back that mean what the manifest says are equal (defaults
filled in, targets and values in any order, one cron spelling), while a difference in any field
the controller sends is an update naming that field, sent against the version compared. Then:
ownership (someone else's association of that name is refused, never updated), a manifest tag
repaired without an update, the undeclared pruned, duplicates collapsed, stagger slots kept.

The live side is what DescribeAssociation returns, written out by hand; ``normalize`` turns it
into the form observe stores, as observe does.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from controller.contract import MANIFEST_TAG, OWNER_TAG, Action, Severity
from controller.kinds.association import (
    AssociationKind,
    AssociationLive,
    CreateAssociation,
    DeleteAssociation,
    LiveAssociation,
    RepairManifestTag,
    UpdateAssociation,
    desired_request,
    normalize,
)
from tests.kinds.builders import NOW, SOMEONE_ELSE, context, manifest, owned_by

SPEC: dict[str, Any] = {
    "document": {
        "name": "AWS-RunPowerShellScript",
        "parameters": {"commands": ["Write-Output one", "Write-Output two"]},
    },
    "targets": {"tags": {"LineOfBusiness": ["finance", "engineering"], "Team": "platform"}},
    "schedule": {"expression": "cron(0 8 ? * MON-FRI *)"},
    "maxConcurrency": "25%",
    "maxErrors": "10%",
    "complianceSeverity": "HIGH",
}

# What DescribeAssociation answers for the association SPEC created (AWS's own spelling: targets
# and values in the order sent, its defaults present, a version and a date).
DESCRIBED: dict[str, Any] = {
    "Name": "AWS-RunPowerShellScript",
    "AssociationName": "inventory",
    "AssociationId": "a-1",
    "AssociationVersion": "3",
    "DocumentVersion": "$DEFAULT",
    "Parameters": {"commands": ["Write-Output one", "Write-Output two"]},
    "Targets": [
        {"Key": "tag:Team", "Values": ["platform"]},
        {"Key": "tag:LineOfBusiness", "Values": ["engineering", "finance"]},
    ],
    "ScheduleExpression": "cron(0 8 ? * MON-FRI *)",
    "MaxConcurrency": "25%",
    "MaxErrors": "10%",
    "ComplianceSeverity": "HIGH",
    "SyncCompliance": "AUTO",
    "ApplyOnlyAtCronInterval": False,
    "Date": NOW - timedelta(days=3),
}


def association(name: str = "inventory", **spec_changes: Any):
    return manifest("Association", name, {**SPEC, **spec_changes})


def live(
    described: dict[str, Any] | None = None,
    *,
    association_id: str = "a-1",
    name: str = "inventory",
    tags: dict[str, str] | None = None,
    schedule: str | None = None,
) -> LiveAssociation:
    described = DESCRIBED if described is None else described
    return LiveAssociation(
        association_id=association_id,
        name=name,
        version=str(described.get("AssociationVersion", "1")),
        document=described["Name"],
        schedule=schedule or described.get("ScheduleExpression"),
        overview={},
        tags=owned_by("Association", name) if tags is None else tags,
        request=normalize(described),
        created=described.get("Date"),
    )


def described_with(**changes: Any) -> dict[str, Any]:
    found = copy.deepcopy(DESCRIBED)
    for key, value in changes.items():
        if value is None:
            found.pop(key, None)
        else:
            found[key] = value
    return found


def diff(associations, *manifests):
    manifests = manifests or (association(),)
    ctx = context(*manifests)
    return AssociationKind().diff(list(manifests), AssociationLive(list(associations)), ctx)


# -- equal means no write ------------------------------------------------------------------------


def test_the_association_as_aws_describes_it_is_equal_to_its_manifest():
    plan = diff([live()])
    assert plan.operations == [] and plan.findings == []


@pytest.mark.parametrize(
    "changes",
    [
        {"DocumentVersion": None},  # AWS's default, omitted
        {"SyncCompliance": None, "ApplyOnlyAtCronInterval": None},
        {"ScheduleExpression": "cron(0  8 ? * mon-fri *)"},  # spacing and case
        {"ScheduleExpression": " cron(0 8 ? * MON-FRI *) "},
        {
            "Targets": [
                {"Key": "tag:LineOfBusiness", "Values": ["finance", "engineering"]},
                {"Key": "tag:Team", "Values": ["platform"]},
            ]
        },
    ],
    ids=["default-version", "default-compliance", "cron-case", "cron-blanks", "target-order"],
)
def test_spellings_that_mean_the_same_are_equal(changes):
    assert diff([live(described_with(**changes))]).operations == []


def test_omitted_fields_equal_their_defaults_on_both_sides():
    bare = manifest(
        "Association",
        "inventory",
        {
            "document": {"name": "AWS-GatherSoftwareInventory"},
            "targets": {"instanceIds": ["mi-0123456789abcdef0"]},
        },
    )
    described = {
        "Name": "AWS-GatherSoftwareInventory",
        "AssociationVersion": "1",
        "Targets": [{"Key": "InstanceIds", "Values": ["mi-0123456789abcdef0"]}],
        "Parameters": {},
        "ComplianceSeverity": "UNSPECIFIED",
    }
    assert diff([live(described)], bare).operations == []


# -- any field the controller sends, when it differs, is an update naming it ---------------------


def _perturbed(value: Any) -> Any:
    """A value of the same shape as ``value`` that means something else."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "-changed" if not value.startswith("cron(") else "cron(0 9 ? * MON-FRI *)"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):
        return [*value, {"Key": "tag:Extra", "Values": ["x"]}] if value else [{"Key": "x"}]
    if isinstance(value, dict):
        return {**value, "extra": ["x"]}
    raise AssertionError(f"no perturbation for {value!r}")


def _sent_fields() -> list[str]:
    """Every field the controller sends for SPEC (its request), bar the name it is found by:
    read from the request itself, not from the list of fields the diff compares."""
    request = desired_request(association(), context(association()), "cron(0 8 ? * MON-FRI *)")
    return sorted(set(request) - {"AssociationName"})


@pytest.mark.parametrize("field", _sent_fields())
def test_a_live_value_that_differs_in_any_sent_field_is_one_update_naming_it(field):
    request = desired_request(association(), context(association()), "cron(0 8 ? * MON-FRI *)")
    changed = described_with(**{field: _perturbed(request[field])})
    [operation] = diff([live(changed)]).operations
    assert (operation.action, operation.resource) == (Action.UPDATE, "a-1")
    assert [change.field for change in operation.changes] == [field]
    update = operation.payload
    assert isinstance(update, UpdateAssociation)
    assert update.association_version == "3"  # the version it compared against
    assert update.request == request  # every field: UpdateAssociation nulls what is omitted


def test_the_sent_fields_are_the_ones_a_manifest_can_set():
    assert _sent_fields() == sorted(
        [
            "ApplyOnlyAtCronInterval",
            "ComplianceSeverity",
            "DocumentVersion",
            "MaxConcurrency",
            "MaxErrors",
            "Name",
            "Parameters",
            "ScheduleExpression",
            "SyncCompliance",
            "Targets",
        ]
    )


def test_a_schedule_offset_is_compared_too():
    with_offset = association(
        schedule={"expression": "cron(0 8 ? * MON-FRI *)", "offset": 2},
        applyOnlyAtCronInterval=True,
    )
    at_cron = described_with(ApplyOnlyAtCronInterval=True)
    [operation] = diff([live(at_cron)], with_offset).operations
    assert [(c.field, c.before, c.after) for c in operation.changes] == [
        ("ScheduleOffset", None, 2)
    ]
    assert (
        diff(
            [live(described_with(ApplyOnlyAtCronInterval=True, ScheduleOffset=2))], with_offset
        ).operations
        == []
    )


def test_a_parameter_value_order_is_a_difference():
    swapped = described_with(Parameters={"commands": ["Write-Output two", "Write-Output one"]})
    [operation] = diff([live(swapped)]).operations
    assert [c.field for c in operation.changes] == ["Parameters"]


# -- ownership -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags",
    [{}, owned_by("Association", "inventory", SOMEONE_ELSE), {OWNER_TAG: SOMEONE_ELSE}],
    ids=["untagged", "another-controller", "owner-only"],
)
def test_someone_elses_association_of_that_name_is_refused_never_updated(tags):
    theirs = live(described_with(MaxErrors="50%"), tags=tags)
    plan = diff([theirs])
    assert plan.operations == []
    [refusal] = plan.findings
    assert refusal.severity is Severity.ERROR
    assert "an association named inventory exists and is not owned" in refusal.message


def test_someone_elses_undeclared_association_is_never_pruned():
    theirs = live(name="legacy", tags=owned_by("Association", "legacy", SOMEONE_ELSE))
    assert diff([live(), theirs]).operations == []


def test_an_undeclared_owned_association_is_pruned():
    gone = live(association_id="a-2", name="legacy")
    [operation] = diff([live(), gone]).operations
    assert (operation.action, operation.resource, operation.name, operation.prune) == (
        Action.DELETE,
        "a-2",
        "legacy",
        True,
    )
    assert operation.payload == DeleteAssociation(association_id="a-2")


def test_a_missing_association_is_created_with_the_owner_tags():
    [operation] = diff([]).operations
    assert (operation.action, operation.resource) == (Action.CREATE, "(new)")
    create = operation.payload
    assert isinstance(create, CreateAssociation)
    assert create.tags == owned_by("Association", "inventory")
    assert create.request["AssociationName"] == "inventory"


def test_a_wrong_manifest_tag_is_repaired_without_an_update():
    tags = {OWNER_TAG: owned_by("Association", "x")[OWNER_TAG], MANIFEST_TAG: "Association/old"}
    [operation] = diff([live(tags=tags)]).operations
    assert isinstance(operation.payload, RepairManifestTag)
    assert [(c.field, c.before, c.after) for c in operation.changes] == [
        (f"tags.{MANIFEST_TAG}", "Association/old", "Association/inventory")
    ]


def test_owned_duplicates_collapse_to_the_one_in_use_and_undeclared_ones_are_all_pruned():
    older = live(association_id="a-1")
    newer = live(described_with(Date=NOW), association_id="a-2")
    gone_one = live(association_id="a-3", name="legacy")
    gone_two = live(association_id="a-4", name="legacy")
    operations = {op.resource: op for op in diff([older, newer, gone_one, gone_two]).operations}
    assert sorted(operations) == ["a-2", "a-3", "a-4"]
    assert operations["a-2"].prune is False and "duplicate of a-1" in operations["a-2"].reason
    assert operations["a-3"].prune is True and operations["a-4"].prune is True
    assert {op.action for op in operations.values()} == {Action.DELETE}


# -- stagger slots -------------------------------------------------------------------------------


def staggered(name: str):
    spec = {k: v for k, v in SPEC.items() if k != "schedule"}
    spec["schedule"] = {"stagger": {"group": "apps", "start": "08:00", "every": "5m"}}
    return manifest("Association", name, spec)


def test_a_new_member_takes_the_lowest_free_slot_and_the_others_keep_theirs():
    members = [staggered(name) for name in ("alpha", "bravo", "charlie")]
    # bravo holds 08:00, charlie 08:10; alpha is new
    bravo = live(
        described_with(ScheduleExpression="cron(0 8 ? * * *)"), association_id="b", name="bravo"
    )
    charlie = live(
        described_with(ScheduleExpression="cron(10 8 ? * * *)"), association_id="c", name="charlie"
    )
    operations = {op.name: op for op in diff([bravo, charlie], *members).operations}
    assert set(operations) == {"alpha"}
    assert operations["alpha"].payload.request["ScheduleExpression"] == "cron(5 8 ? * * *)"


# -- which association a package's new version starts -------------------------------------------


def test_the_association_in_use_for_a_manifest_is_always_ours():
    """A package's new default starts the associations ``owned`` names: never someone else's,
    even one older and run by more instances under the same name."""
    ours = live(association_id="a-ours")
    theirs = live(
        described_with(Date=NOW - timedelta(days=300)),
        association_id="a-theirs",
        tags=owned_by("Association", "inventory", SOMEONE_ELSE),
    )
    theirs.overview = {"AssociationStatusAggregatedCount": {"Success": 500}}
    stranger = live(association_id="a-stranger", name="legacy", tags={})
    owned = AssociationLive([theirs, ours, stranger]).owned(owned_by("Association", "x")[OWNER_TAG])
    assert {name: a.association_id for name, a in owned.items()} == {"inventory": "a-ours"}
