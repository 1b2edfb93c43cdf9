"""deploy/events: the queue and rules pass cfn-lint, the ECS template holds the very same, the
policies let the controller read and delete from that queue only, and the rules let through
exactly the events the controller reads (checked by deploying it: tests/events)."""

from __future__ import annotations

from typing import Any

from cfnlint.decode import decode

from tests.deploy.test_ecs import plain, resources
from tests.deploy.tools import ROOT, run, tool

EVENTS = ROOT / "deploy" / "events" / "fleet-events.yaml"


def events_template() -> dict[str, Any]:
    loaded, problems = decode(str(EVENTS))
    assert not problems, problems
    return plain(loaded)


def test_cfn_lint_passes():
    result = run([tool("cfn-lint"), str(EVENTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ecs_template_holds_the_same_queue_policy_and_rules():
    own = events_template()["Resources"]
    ecs = resources()
    for name, resource in own.items():
        assert ecs.get(name) == resource, f"deploy/ecs's {name} differs from deploy/events'"
    container = ecs["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["FLEET_EVENTS_QUEUE_URL"] == {"Ref": "EventsQueue"}


def test_only_the_rules_may_send_and_every_rule_targets_the_queue():
    own = events_template()["Resources"]
    rules = {name for name, r in own.items() if r["Type"] == "AWS::Events::Rule"}
    assert len(rules) == 4
    for name in rules:
        [target] = own[name]["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    [statement] = own["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    allowed = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(a["Fn::GetAtt"][0] for a in allowed) == sorted(rules)


def test_the_rules_ask_for_the_event_types_the_controller_reads():
    from controller.service.events.notice import (
        API_CALL,
        DEREGISTRATION,
        KNOWN_SOURCES,
        REGISTRATION,
        TAG_CHANGE,
    )

    patterns = [
        r["Properties"]["EventPattern"]
        for r in events_template()["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
    ]
    sources = {s for p in patterns for s in p["source"]}
    types = {t for p in patterns for t in p["detail-type"]}
    assert sources == KNOWN_SOURCES
    assert types == {TAG_CHANGE, API_CALL, REGISTRATION, DEREGISTRATION}
