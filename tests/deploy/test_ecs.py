"""deploy/ecs: cfn-lint passes, and the template holds what the controller needs.

cfn-lint checks the template against CloudFormation's resource specification (property names,
types, allowed values, required properties, references). The tests below check what cfn-lint
cannot know: the task role carries deploy/iam's policies verbatim, the container's command parses
with the real CLI, the lease table has the key the lease code uses, logs go to the log group.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from controller.cli import build_parser
from tests.deploy.tools import ROOT, run, tool

TEMPLATE = ROOT / "deploy" / "ecs" / "fleet-controller.yaml"
IAM = ROOT / "deploy" / "iam"
PSEUDO_PARAMETERS = {"AWS::Partition", "AWS::AccountId", "AWS::Region", "AWS::StackName"}


def template() -> dict[str, Any]:
    loaded, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return plain(loaded)


def plain(value: Any) -> Any:
    """cfn-lint's node classes as plain dicts/lists/strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def without_sub(value: Any) -> Any:
    """``{"Fn::Sub": "text"}`` -> ``"text"``: deploy/iam writes the same ${...} placeholders."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"]
        return {k: without_sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_sub(v) for v in value]
    return value


def resources() -> dict[str, Any]:
    return template()["Resources"]


def container() -> dict[str, Any]:
    definitions = resources()["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert len(definitions) == 1
    return definitions[0]


def test_cfn_lint_passes():
    result = run([tool("cfn-lint"), str(TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path):
    broken = TEMPLATE.read_text(encoding="utf-8").replace(
        "BillingMode: PAY_PER_REQUEST", "BillingMode: ON_DEMAND"
    )
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    result = run([tool("cfn-lint"), str(path)])
    assert result.returncode != 0
    assert "ON_DEMAND" in result.stdout


def test_the_brief_resources_are_there():
    kinds = {name: r["Type"] for name, r in resources().items()}
    for needed in [
        "AWS::ECS::TaskDefinition",
        "AWS::ECS::Service",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::Table",
    ]:
        assert needed in kinds.values(), needed
    assert kinds["TaskRole"] == kinds["ExecutionRole"] == "AWS::IAM::Role"
    parameters = template()["Parameters"]
    assert parameters["Subnets"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SecurityGroups"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    assert parameters["Image"]["Type"] == "String"


def test_task_role_carries_the_iam_policies_verbatim():
    policies = {
        p["PolicyName"]: without_sub(p["PolicyDocument"])
        for p in resources()["TaskRole"]["Properties"]["Policies"]
    }
    for name in ("controller-policy", "fleet-policy"):
        expected = json.loads((IAM / f"{name}.json").read_text(encoding="utf-8"))
        assert policies[name] == expected, f"the template's {name} differs from deploy/iam"
    assert set(policies) == {"controller-policy", "fleet-policy"}


def test_every_policy_placeholder_is_a_template_parameter():
    parameters = set(template()["Parameters"]) | PSEUDO_PARAMETERS
    for path in (IAM / "controller-policy.json", IAM / "fleet-policy.json"):
        for name in re.findall(r"\$\{([^}]+)\}", path.read_text(encoding="utf-8")):
            assert name in parameters, f"{path.name}: ${{{name}}} is no template parameter"


def test_lease_table_matches_what_the_lease_code_uses():
    table = resources()["LeaseTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "target", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "target", "AttributeType": "S"}]
    env = {e["Name"]: e["Value"] for e in container()["Environment"]}
    assert env["FLEET_LEASE_TABLE"] == {"Ref": "LeaseTable"}
    assert table["TableName"] == {"Ref": "LeaseTableName"}  # the name the policy scopes to


def test_container_command_parses_with_the_real_cli():
    command = [c if isinstance(c, str) else f"<{c['Ref']}>" for c in container()["Command"]]
    args = build_parser().parse_args(command)
    assert args.command == "run"
    assert args.git_url == "<GitUrl>" and args.git_ref == "<GitRef>"
    assert args.metrics_port == container()["PortMappings"][0]["ContainerPort"]
    assert args.interval == 300  # what alerts.yaml's fleet:reconcile_interval_seconds assumes
    mounts = {m["ContainerPath"] for m in container()["MountPoints"]}
    assert Path(args.git_dir).parent.as_posix() in mounts


def test_logs_go_to_the_log_group_and_the_container_is_locked_down():
    logging = container()["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    assert logging["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    assert resources()["LogGroup"]["Properties"]["RetentionInDays"]
    assert container()["ReadonlyRootFilesystem"] is True
    uid = container()["User"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    health = container()["HealthCheck"]["Command"]
    assert health[:3] == ["CMD", "python", "-c"] and "/healthz" in health[3]
    compile(health[3], "<healthcheck>", "exec")
    secrets = {s["Name"]: s["ValueFrom"] for s in container()["Secrets"]}
    assert secrets["FLEET_WEBHOOK_SECRET"] == {"Ref": "WebhookSecretArn"}


def test_roles_trust_only_ecs_tasks_of_this_account():
    for role in ("TaskRole", "ExecutionRole"):
        statement = resources()[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in statement] == [{"Service": "ecs-tasks.amazonaws.com"}]
        assert statement[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == {
            "Ref": "AWS::AccountId"
        }
