"""Field types and spec rules, checked against botocore's models where AWS states a limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import botocore.session
import pytest
from pydantic import ValidationError

from controller.manifests import ActivationSpec, TagSyncSpec, format_duration, parse_duration
from controller.manifests.common import MAX_USER_TAGS, tag_key_problem, tag_value_problem
from controller.manifests.errors import InvalidDesiredState, ManifestError
from controller.manifests.specs.activation import (
    IAM_ROLE_MAX,
    REGISTRATION_LIMIT_MAX,
    parameter_name_problem,
)
from controller.manifests.specs.tagsync import WORKSPACE_STATES

SESSION = botocore.session.get_session()


def activation(**spec: Any) -> ActivationSpec:
    base: dict[str, Any] = {"iamRole": "SSMServiceRole", "publish": {"parameterName": "/p"}}
    return ActivationSpec.model_validate({**base, **spec})


def tagsync(**spec: Any) -> TagSyncSpec:
    return TagSyncSpec.model_validate(spec)


# --- limits agree with the AWS models ---------------------------------------------------------


def test_limits_match_botocore_models() -> None:
    ssm = SESSION.get_service_model("ssm")
    create = ssm.operation_model("CreateActivation").input_shape.members
    assert create["RegistrationLimit"].metadata == {"min": 1, "max": REGISTRATION_LIMIT_MAX}
    assert create["IamRole"].metadata["max"] == IAM_ROLE_MAX
    tag = ssm.shape_for("Tag").members
    assert tag["Key"].metadata["max"] == 128 and tag["Value"].metadata["max"] == 256
    workspaces = SESSION.get_service_model("workspaces")
    assert tuple(workspaces.shape_for("WorkspaceState").enum) == WORKSPACE_STATES


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "d", "30", "1h1d", "1.5h", "-1h", "2 hours", "1w", "9999999d"]
)
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="30d, 12h, 90m, 45s or 1d12h"):
        parse_duration(text)


def test_durations_format_canonically() -> None:
    assert format_duration(timedelta(hours=36)) == "1d12h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"
    assert activation(validFor="36h").model_dump(by_alias=True)["validFor"] == "1d12h"


# --- tags -----------------------------------------------------------------------------------


def test_tag_key_rules() -> None:
    assert tag_key_problem("Owner") is None
    assert tag_key_problem("Kostenstelle Ä1 :/=+-@_.") is None
    assert tag_key_problem("K" * 128) is None
    assert "1 to 128" in (tag_key_problem("K" * 129) or "")
    assert "empty" in (tag_key_problem("") or "")
    assert "'aws:'" in (tag_key_problem("AWS:Owner") or "")
    assert "controller" in (tag_key_problem("Fleet-Controller/owner") or "")
    assert "characters SSM does not allow" in (tag_key_problem("cost#center") or "")
    assert tag_value_problem("") is None
    assert tag_value_problem("v" * 256) is None
    assert "0 to 256" in (tag_value_problem("v" * 257) or "")
    assert "characters SSM does not allow" in (tag_value_problem("a,b") or "")


def test_tag_budget_leaves_room_for_the_controller() -> None:
    tags = {f"K{i}": "v" for i in range(MAX_USER_TAGS)}
    assert len(activation(tags=tags).tags) == MAX_USER_TAGS
    with pytest.raises(ValidationError, match=f"at most {MAX_USER_TAGS}"):
        activation(tags={**tags, "one-more": "v"})


# --- Activation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role",
    ["SSMServiceRole", "service-role/AmazonEC2RunCommandRoleForManagedInstances", "a+=,.@_-"],
)
def test_iam_role_names_accepted(role: str) -> None:
    assert activation(iamRole=role).iam_role == role


@pytest.mark.parametrize(
    ("role", "fragment"),
    [
        ("", "must name"),
        ("R" * 65, "at most 64"),
        ("arn:aws:iam::123456789012:role/R", "not its ARN"),
        ("my role", "not an IAM role name"),
        ("aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM", "service-linked"),
    ],
)
def test_iam_role_names_refused(role: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        activation(iamRole=role)


@pytest.mark.parametrize(
    "name", ["activation", "/fleet/activation", "/a/b-c/d_e.f", "/" + "/".join(["l"] * 15)]
)
def test_parameter_names_accepted(name: str) -> None:
    assert parameter_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("/fleet/my activation", "spaces"),
        ("/fleet/act$", "characters SSM does not allow"),
        ("fleet/activation", "must start with '/'"),
        ("/fleet//activation", "empty level"),
        ("/fleet/activation/", "empty level"),
        ("/" + "/".join(["l"] * 16), "at most 15"),
        ("/AWS/x", "cannot begin with 'aws' or 'ssm'"),
        ("ssmActivation", "cannot begin with 'aws' or 'ssm'"),
        ("/" + "p" * 950, "at most 950"),
    ],
)
def test_parameter_names_refused(name: str, fragment: str) -> None:
    assert fragment in (parameter_name_problem(name) or "")


def test_activation_bounds() -> None:
    assert activation(validFor="30d", registrationLimit=1000).registration_limit == 1000
    assert activation(validFor="1h").valid_for == timedelta(hours=1)
    with pytest.raises(ValidationError, match="shorter than 1h"):
        activation(validFor="59m")
    with pytest.raises(ValidationError, match="1 to 1000"):
        activation(registrationLimit=0)
    with pytest.raises(ValidationError, match="percentage from 1 to 100"):
        activation(rotateAtRegistrationPercent=101)
    with pytest.raises(ValidationError, match="omit the field"):
        activation(renewBefore=None)
    with pytest.raises(ValidationError, match="at most 256"):
        activation(description="d" * 257)
    with pytest.raises(ValidationError, match="CreateActivation does not allow"):
        activation(defaultInstanceName="name#1")


def test_renew_before_defaults_to_a_quarter_and_must_be_shorter() -> None:
    assert activation(validFor="2d").renew_before == timedelta(hours=12)
    assert activation(validFor="2d", renewBefore="1d").problems() == []
    (problem,) = activation(validFor="2d", renewBefore="48h").problems()
    assert problem.path == ("renewBefore",)
    assert "2d must be shorter than validFor (2d)" in problem.message


def test_rotation_threshold_rounds_up() -> None:
    assert (
        activation(registrationLimit=10, rotateAtRegistrationPercent=85).rotate_at_registrations
        == 9
    )
    assert activation(registrationLimit=1000).rotate_at_registrations == 900
    assert activation(rotateAtRegistrationPercent=1).rotate_at_registrations == 1


def test_yaml_names_only_and_no_coercion() -> None:
    with pytest.raises(ValidationError):
        ActivationSpec.model_validate({"iam_role": "R", "publish": {"parameterName": "/p"}})
    with pytest.raises(ValidationError):
        activation(registrationLimit="5")
    with pytest.raises(ValidationError):
        activation(registrationLimit=True)


# --- TagSync --------------------------------------------------------------------------------


def finance() -> TagSyncSpec:
    return tagsync(
        copyTags={
            "include": ["CostCenter", "App-*", "Dept"],
            "exclude": ["App-Internal*"],
            "rename": {"Dept": "Department"},
        },
        attributes={"userName": "User", "bundleId": "Bundle"},
        staticTags={"LineOfBusiness": "finance"},
    )


def test_produced_keys_apply_include_exclude_and_rename() -> None:
    spec = finance()
    keys = ["CostCenter", "App-Payroll", "App-InternalTools", "Dept", "Owner", "aws:workspaces:x"]
    assert spec.produced_keys_for(keys) == {
        "App-Payroll": "App-Payroll",
        "CostCenter": "CostCenter",
        "Dept": "Department",
    }


def test_produced_keys_precedence() -> None:
    spec = tagsync(
        copyTags={"include": ["*"], "rename": {"Division": "Department"}},
        attributes={"userName": "User"},
        staticTags={"Tier": "gold"},
    )
    # Static and attribute keys win over copies; a rename wins over an unrenamed copy;
    # reserved keys the WorkSpace carries are never produced.
    produced = spec.produced_keys_for(
        ["Tier", "User", "Division", "Department", "aws:cloudformation:stack", "Color"]
    )
    assert produced == {"Color": "Color", "Division": "Department"}


def test_owns_exactly_the_keys_it_can_produce() -> None:
    spec = finance()
    owned = ["LineOfBusiness", "User", "Bundle", "Department", "CostCenter", "App-Payroll"]
    not_owned = ["Dept", "App-InternalTools", "Owner", "aws:owner", "fleet-controller/owner"]
    assert all(spec.owns_key(key) for key in owned)
    assert not any(spec.owns_key(key) for key in not_owned)


def test_overlap_needs_disjoint_directories_or_bundles() -> None:
    def selector(**w: Any) -> Any:
        return tagsync(workspaces=w).workspaces

    a = selector(directoryIds=["d-1234567890"])
    assert not a.may_overlap(selector(directoryIds=["d-0987654321"]))
    assert a.may_overlap(selector(directoryIds=["d-1234567890", "d-0987654321"]))
    assert a.may_overlap(selector(bundleIds=["wsb-12345678"]))
    assert a.may_overlap(selector())
    assert not selector(bundleIds=["wsb-12345678"]).may_overlap(
        selector(bundleIds=["wsb-87654321"])
    )
    assert a.selects("d-1234567890", "wsb-x", "AVAILABLE")
    assert not a.selects("d-1234567890", "wsb-x", "TERMINATED")


def test_tagsync_problems_are_located_inside_the_spec() -> None:
    spec = tagsync(
        workspaces={"directoryIds": ["d-1234567890", "d-1234567890"]},
        copyTags={
            "include": ["Dept*", "aws:*"],
            "exclude": ["DeptOld"],
            "rename": {"DeptOld": "Department", "Team": "T"},
        },
    )
    found = {(p.path, p.message.split(" ")[0]) for p in spec.problems()}
    assert found == {
        (("workspaces", "directoryIds", 1), "d-1234567890"),
        (("copyTags", "rename", "DeptOld"), "rename"),
        (("copyTags", "rename", "Team"), "rename"),
        (("copyTags", "include", 1), "pattern"),
    }


def test_tagsync_fixed_keys_must_fit_the_budget() -> None:
    static = {f"S{i}": "v" for i in range(MAX_USER_TAGS)}
    (problem,) = tagsync(staticTags=static, attributes={"userName": "User"}).problems()
    assert problem.path == () and f"at most {MAX_USER_TAGS}" in problem.message


def test_glob_patterns_are_validated() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        tagsync(copyTags={"include": [""]})


# --- errors ---------------------------------------------------------------------------------


def test_error_rendering_and_sorting() -> None:
    late = ManifestError("b.yaml", 3, "late")
    early = ManifestError("a.yaml", 12, "x is wrong", "Activation", "corp", "spec.validFor")
    whole = ManifestError("a.yaml", None, "too big")
    assert str(early) == "a.yaml:12: Activation/corp: spec.validFor: x is wrong"
    assert str(whole) == "a.yaml: too big"
    error = InvalidDesiredState([late, early, whole, early])
    assert error.errors == [whole, early, late]  # sorted, duplicates dropped
    assert str(error).splitlines() == [
        "desired state is invalid: 3 errors",
        "  a.yaml: too big",
        "  a.yaml:12: Activation/corp: spec.validFor: x is wrong",
        "  b.yaml:3: late",
    ]
