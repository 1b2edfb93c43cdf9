"""deploy/iam grants exactly the AWS actions the controller calls, each as narrowly as AWS allows.

The operations come from the source (tests/deploy/awscalls.py reads every
``AwsApi.call/items/pages`` in controller/, except the sandbox, which is the fake AWS). Each maps
to its IAM action (``prefix:Operation`` unless the table below says otherwise), plus the actions
AWS authorises alongside some calls (passing a role, tags on create). The policies must allow
every one of them and nothing else: a new AWS call without a policy change fails here, and so
does a grant the code no longer needs.

AWS's own action and resource catalogue (the Service Authorization Reference, as shipped offline
by the policy_sentry package) checks that every action exists, that ``Resource: "*"`` is used
only for actions that support no narrower resource (or under a condition), and that every ARN
pattern fits a resource type the action supports.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data

from controller.aws.accounting import is_read
from controller.manifests import load_desired_state
from tests.deploy.awscalls import Scan, scan_package

ROOT = Path(__file__).resolve().parents[2]
IAM = ROOT / "deploy" / "iam"
# Who needs what: the controller's own identity holds the leases and assumes the targets' roles;
# each target's role (or the controller's, for a target without roleArn) does the fleet work.
POLICY_FILES = {"controller-policy.json": {"dynamodb", "sts"}, "fleet-policy.json": None}
# The role `plan` runs under in CI (deploy/github/plan.yml): the fleet's reads, nothing else.
PLAN_POLICY = "plan-policy.json"
ALL_POLICIES = [*POLICY_FILES, PLAN_POLICY]

IAM_PREFIX = {
    "ssm": "ssm",
    "workspaces": "workspaces",
    "resourcegroupstaggingapi": "tag",
    "s3": "s3",
    "dynamodb": "dynamodb",
    "sts": "sts",
    "sqs": "sqs",
}
# Operations whose IAM action is not named after them.
ACTION_FOR = {
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "GetObjectAttributes"): ("s3:GetObjectAttributes",),
    # SQS authorises each entry of a batch as the single action.
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage",),
}
# Operations AWS allows to any authenticated caller ("No permissions are required").
NO_PERMISSION = {("sts", "GetCallerIdentity")}
# Actions AWS also authorises for a call: IamRole is passed to SSM (iam:PassRole), and SSM
# authorises tags sent with a create as ssm:AddTagsToResource on the new resource.
ALSO_REQUIRES = {
    ("ssm", "CreateActivation"): ("iam:PassRole", "ssm:AddTagsToResource"),
    ("ssm", "PutParameter"): ("ssm:AddTagsToResource",),
    ("ssm", "CreateDocument"): ("ssm:AddTagsToResource",),
    ("ssm", "CreateAssociation"): ("ssm:AddTagsToResource",),
}
# Example values for the policies' placeholders (CloudFormation ${...} syntax; the ECS template
# fills them from its parameters, README.md in deploy/iam says how to fill them by hand).
PLACEHOLDERS = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "ControllerId": "fleet-controller",
    "ActivationRoleName": "SSMServiceRole-WorkSpaces",
    "ParameterPrefix": "fleet-controller/",
    "PackageBucketName": "example-fleet-packages",
    "LeaseTableName": "fleet-controller-leases",
    "TargetRoleName": "fleet-controller-target",
    "ControllerRoleArn": "arn:aws:iam::123456789012:role/fleet-controller",
    "EventsQueueName": "fleet-controller-events",
}


@cache
def code_scan() -> Scan:
    return scan_package(ROOT, exclude=("fleet_sandbox/",))


def required_actions(scan: Scan, reads_only: bool = False) -> dict[str, list[str]]:
    """IAM action -> the call sites that need it (only the fleet's reads with ``reads_only``)."""
    needed: dict[str, list[str]] = {}
    for (service, operation), sites in sorted(scan.operations.items()):
        if (service, operation) in NO_PERMISSION:
            continue
        if reads_only and (
            not is_read(operation) or service in POLICY_FILES["controller-policy.json"]
        ):
            continue
        assert service in IAM_PREFIX, (
            f"{service} ({sites[0]}) has no IAM prefix here: add it to IAM_PREFIX"
        )
        actions = ACTION_FOR.get((service, operation), (f"{IAM_PREFIX[service]}:{operation}",))
        for action in (*actions, *ALSO_REQUIRES.get((service, operation), ())):
            needed.setdefault(action, []).extend(sites)
    return needed


def load_policy(name: str) -> dict[str, Any]:
    return json.loads((IAM / name).read_text(encoding="utf-8"))


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def granted_actions(files: list[str] | None = None) -> dict[str, set[str]]:
    """IAM action -> the policy files granting it."""
    granted: dict[str, set[str]] = {}
    for name in files or list(POLICY_FILES):
        for statement in statements(load_policy(name)):
            for action in as_list(statement["Action"]):
                granted.setdefault(action, set()).add(name)
    return granted


def render(text: str) -> str:
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        assert key in PLACEHOLDERS, f"unknown placeholder ${{{key}}} in deploy/iam"
        return PLACEHOLDERS[key]

    return re.sub(r"\$\{([^}]+)\}", fill, text)


@cache
def catalogue(action: str) -> list[dict[str, Any]]:
    """AWS's rows for one action: one per resource type (``*`` = no resource type)."""
    prefix, name = action.split(":", 1)
    rows = get_action_data(prefix, name)
    return list(rows.get(prefix, [])) if rows else []


def arn_pattern(arn_format: str) -> re.Pattern[str]:
    """A catalogue ARN format (``arn:${Partition}:ssm:${Region}:...``) as a regex for policy ARNs."""
    pattern = ""
    for index, part in enumerate(re.split(r"(\$\{[^}]+\})", arn_format)):
        if index % 2 == 0:
            pattern += re.escape(part)
        elif part in ("${Partition}", "${Region}", "${Account}"):
            pattern += "[^:]*"
        else:
            pattern += ".+"
    return re.compile(pattern)


# -- the code side -------------------------------------------------------------------------------


def test_the_scan_reads_the_package_and_resolves_every_call():
    scan = code_scan()
    assert scan.files > 20
    assert not scan.problems, "\n".join(scan.problems)
    # Calls the scan must see, spelled the three ways the code writes them (call, items, pages).
    for known in [("ssm", "CreateActivation"), ("ssm", "DescribeInstanceInformation")]:
        assert known in scan.operations


def test_the_scan_finds_calls_it_must_not_miss(tmp_path: Path):
    """Multi-line calls, keywords, constants, forwarding helpers; and refuses what it can't read."""
    package = tmp_path / "controller"
    package.mkdir()
    (package / "sample.py").write_text(
        "SERVICE = 'ssm'\n"
        "def observe(aws):\n"
        "    aws.call(\n        'ssm',\n        'DescribeActivations',\n    )\n"
        "    list(aws.items(SERVICE, 'DescribeParameters'))\n"
        "    aws.pages(service='s3', operation='ListObjectsV2', Bucket='b')\n"
        "    {}.items()\n"
        "class Table:\n"
        "    def write(self):\n"
        "        self._conditional('PutItem', Item={})\n"
        "    def _conditional(self, operation, **params):\n"
        "        self.aws.call('dynamodb', operation, **params)\n"
        "def dynamic(aws, name):\n"
        "    aws.call('ssm', name.title())\n"
        "def bypass(session):\n"
        "    session.client('workspaces').describe_workspaces()\n",
        encoding="utf-8",
    )
    scan = scan_package(tmp_path)
    assert set(scan.operations) == {
        ("ssm", "DescribeActivations"),
        ("ssm", "DescribeParameters"),
        ("s3", "ListObjectsV2"),
        ("dynamodb", "PutItem"),
    }
    assert scan.operations[("ssm", "DescribeActivations")] == ["controller/sample.py:3"]
    assert len(scan.problems) == 2
    assert "cannot resolve" in scan.problems[0] or "cannot resolve" in scan.problems[1]
    assert any("boto3 client for 'workspaces'" in p for p in scan.problems)


# -- the policy side -----------------------------------------------------------------------------


def test_policies_are_well_formed_allow_only_and_free_of_wildcard_actions():
    for name in ALL_POLICIES:
        policy = load_policy(name)
        assert policy["Version"] == "2012-10-17"
        sids = [s["Sid"] for s in statements(policy)]
        assert len(sids) == len(set(sids)), f"{name}: duplicate Sid"
        for statement in statements(policy):
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, (
                f"{name}/{statement['Sid']}: NotAction/NotResource/Principal are not used here"
            )
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action and "?" not in action, f"{name}: wildcard {action}"
                assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), action


def test_the_policies_allow_every_action_the_code_needs_and_nothing_else():
    needed = required_actions(code_scan())
    granted = granted_actions()
    missing = {action: sites for action, sites in needed.items() if action not in granted}
    extra = sorted(set(granted) - set(needed))
    assert not missing, "the code calls actions no policy in deploy/iam allows:\n" + "\n".join(
        f"  {action}  (called at {', '.join(sorted(set(sites)))})"
        for action, sites in sorted(missing.items())
    )
    assert not extra, f"deploy/iam allows actions the code never calls: {extra}"


def test_plan_policy_allows_exactly_the_fleet_reads():
    needed = required_actions(code_scan(), reads_only=True)
    granted = granted_actions([PLAN_POLICY])
    assert set(granted) == set(needed), (
        f"missing {sorted(set(needed) - set(granted))}, extra {sorted(set(granted) - set(needed))}"
    )
    assert all(is_read(action.split(":", 1)[1]) for action in granted)


def test_plan_policy_grants_no_more_than_the_fleet_policy_on_each_resource():
    """Read-only must not mean wider: each read is granted on resources the fleet role has too."""

    def grants(name: str) -> set[tuple[str, str]]:
        return {
            (action, resource)
            for statement in statements(load_policy(name))
            for action in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        }

    assert grants(PLAN_POLICY) <= grants("fleet-policy.json")


def test_each_action_sits_in_the_policy_of_the_identity_that_calls_it():
    for action, files in granted_actions().items():
        prefix = action.split(":", 1)[0]
        home = next(
            (name for name, prefixes in POLICY_FILES.items() if prefixes and prefix in prefixes),
            "fleet-policy.json",
        )
        assert files == {home}, f"{action} belongs in {home} only, found in {sorted(files)}"


def test_every_action_exists_in_aws_catalogue():
    for action in granted_actions(ALL_POLICIES):
        assert catalogue(action), f"{action} is not an IAM action (Service Authorization Reference)"


def test_resources_are_scoped_wherever_aws_supports_it():
    for name in ALL_POLICIES:
        for statement in statements(load_policy(name)):
            resources = as_list(statement["Resource"])
            for action in as_list(statement["Action"]):
                formats = [r["resource_arn_format"] for r in catalogue(action)]
                scoped = [f for f in formats if f != "*"]
                if resources == ["*"]:
                    # "*" is right for an action with no resource type; otherwise only under a
                    # condition (tags on a resource not created yet have no ARN to name).
                    assert not scoped or "Condition" in statement, (
                        f"{name}/{statement['Sid']}: {action} supports {scoped}; scope it"
                    )
                    continue
                for resource in resources:
                    arn = render(resource)
                    assert any(arn_pattern(f).fullmatch(arn) for f in scoped), (
                        f"{name}/{statement['Sid']}: {arn} fits no resource type of {action} "
                        f"({scoped})"
                    )


def test_condition_keys_are_ones_aws_evaluates_for_each_action():
    """A condition key the action does not support never matches: the grant would be dead."""
    for name in ALL_POLICIES:
        for statement in statements(load_policy(name)):
            keys = [k for block in statement.get("Condition", {}).values() for k in block]
            for action in as_list(statement["Action"]):
                supported = {
                    key for row in catalogue(action) for key in row.get("condition_keys", [])
                }
                for key in keys:
                    assert any(arn_pattern(s).fullmatch(key) for s in supported), (
                        f"{name}/{statement['Sid']}: {action} does not support condition {key}"
                    )


def test_every_placeholder_is_known():
    for name in ALL_POLICIES:
        render((IAM / name).read_text(encoding="utf-8"))  # asserts on unknown placeholders


def test_target_trust_policy_lets_only_the_controller_role_assume():
    trust = json.loads(render((IAM / "target-trust-policy.json").read_text(encoding="utf-8")))
    (statement,) = statements(trust)
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": PLACEHOLDERS["ControllerRoleArn"]}
    # and the controller's policy may assume a role of that name in any account
    controller = render((IAM / "controller-policy.json").read_text(encoding="utf-8"))
    assert f":role/{PLACEHOLDERS['TargetRoleName']}" in controller


def test_example_desired_state_fits_the_default_scoping():
    """The worked example's activation role and parameters are inside what the policy allows."""
    fleet = render((IAM / "fleet-policy.json").read_text(encoding="utf-8"))
    desired = load_desired_state(ROOT / "desired-state")
    activations = list(desired.of_kind("Activation"))
    assert activations
    for manifest in activations:
        parameter = manifest.spec.publish.parameter_name
        arn = f"arn:aws:ssm:us-east-1:123456789012:parameter/{parameter.lstrip('/')}"
        patterns = [
            re.escape(r).replace(r"\*", ".*")
            for s in statements(json.loads(fleet))
            if "ssm:PutParameter" in as_list(s["Action"])
            for r in as_list(s["Resource"])
        ]
        assert any(re.fullmatch(p, arn) for p in patterns), f"{parameter} is outside {patterns}"
        assert manifest.spec.iam_role == PLACEHOLDERS["ActivationRoleName"]


@pytest.mark.parametrize("operation", sorted(ALSO_REQUIRES))
def test_dependent_action_rules_name_real_operations(operation: tuple[str, str]):
    from tests.deploy.awscalls import botocore_operations

    service, name = operation
    assert name in botocore_operations(service)
