"""Reading one EventBridge event: which WorkSpaces and instances it names, whatever the layout of
the CloudTrail record, and a clear refusal (never quoting the body) of anything else."""

from __future__ import annotations

import json

import pytest

from controller.service.events.notice import BadEvent, parse_event

WS = "ws-0a1b2c3d4"
MI = "mi-0123456789abcdef0"
ACCOUNT, REGION = "123456789012", "us-east-1"
TAG_CHANGE_TYPE = "Tag Change on Resource"


def _event(detail_type: str, source: str, detail: dict, resources: list[str] = ()) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "e",
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT,
            "time": "2025-01-01T00:00:00Z",
            "region": REGION,
            "resources": list(resources),
            "detail": detail,
        }
    )


def _api_call(source: str, name: str, request: dict, response: dict | None = None) -> str:
    detail = {"eventName": name, "requestParameters": request, "responseElements": response}
    return _event("AWS API Call via CloudTrail", source, detail)


def test_a_tag_change_names_its_resource_and_carries_the_whole_tag_set():
    notice = parse_event(
        _event(
            "Tag Change on Resource",
            "aws.tag",
            {
                "changed-tag-keys": ["A"],
                "service": "workspaces",
                "resource-type": "workspace",
                "version": 3,
                "tags": {"A": "1", "B": ""},
            },
            [f"arn:aws:workspaces:{REGION}:{ACCOUNT}:workspace/{WS}"],
        )
    )
    assert notice.type == "Tag Change on Resource"
    assert (notice.account, notice.region) == (ACCOUNT, REGION)
    assert notice.changes.workspaces == {WS} and not notice.changes.instances
    assert notice.tags == {"A": "1", "B": ""}


@pytest.mark.parametrize(
    ("name", "request_parameters", "response", "workspaces", "instances"),
    [
        (
            "TerminateWorkspaces",
            {"terminateWorkspaceRequests": [{"workspaceId": WS}]},
            None,
            {WS},
            set(),
        ),
        (
            "RebuildWorkspaces",
            {"rebuildWorkspaceRequests": [{"WorkspaceId": WS}]},
            None,
            {WS},
            set(),
        ),
        (
            "CreateWorkspaces",
            {"workspaces": [{"userName": "u"}]},
            {"pendingRequests": [{"workspaceId": WS}]},
            {WS},
            set(),
        ),
        (
            "ModifyWorkspaceProperties",
            {"workspaceId": WS, "workspaceProperties": {}},
            None,
            {WS},
            set(),
        ),
        ("DeregisterManagedInstance", {"instanceId": MI}, None, set(), {MI}),
        (
            "AddTagsToResource",
            {"resourceType": "ManagedInstance", "resourceId": MI, "tags": []},
            None,
            set(),
            {MI},
        ),
        (
            "AddTagsToResource",
            {"resourceType": "Parameter", "resourceId": "/x/ws-short", "tags": []},
            None,
            set(),
            set(),
        ),
    ],
)
def test_a_cloudtrail_record_names_what_its_request_and_response_hold(
    name, request_parameters, response, workspaces, instances
):
    notice = parse_event(_api_call("aws.workspaces", name, request_parameters, response))
    assert notice.type == name
    assert notice.changes.workspaces == workspaces
    assert notice.changes.instances == instances


def test_a_tag_call_says_what_it_set_and_removed_in_either_spelling():
    added = parse_event(
        _api_call(
            "aws.workspaces",
            "CreateTags",
            {"resourceId": WS, "tags": [{"key": "A", "value": "1"}, {"Key": "B", "Value": ""}]},
        )
    )
    assert added.added == {"A": "1", "B": ""} and added.removed == frozenset()
    removed = parse_event(
        _api_call("aws.ssm", "RemoveTagsFromResource", {"resourceId": MI, "tagKeys": ["A", 5]})
    )
    assert removed.removed == {"A"} and removed.changes.instances == {MI}


def test_a_tag_value_never_names_a_resource():
    """The controller's own join tag holds a WorkSpace's id: writing it to an instance names the
    instance only (read as naming the WorkSpace, every join write would read a WorkSpace again)."""
    notice = parse_event(
        _api_call(
            "aws.ssm",
            "AddTagsToResource",
            {
                "resourceType": "ManagedInstance",
                "resourceId": MI,
                "tags": [{"key": "fleet-controller/workspace-id", "value": WS}],
            },
        )
    )
    assert notice.changes.instances == {MI} and notice.changes.workspaces == set()
    assert notice.added == {"fleet-controller/workspace-id": WS}


def test_a_call_aws_refused_names_nothing():
    """CloudTrail records failed calls too (``errorCode``): anyone allowed to call CreateTags
    could otherwise have the controller read (and read again, as not visible yet, for the whole
    consistency window) any id they make up."""
    detail = {
        "eventName": "CreateTags",
        "errorCode": "ResourceNotFoundException",
        "requestParameters": {"resourceId": WS, "tags": [{"key": "A", "value": "1"}]},
    }
    notice = parse_event(_event("AWS API Call via CloudTrail", "aws.workspaces", detail))
    assert notice.type == "CreateTags" and not notice.changes
    del detail["errorCode"]
    assert parse_event(_event("AWS API Call via CloudTrail", "aws.workspaces", detail)).changes


def test_a_registration_names_its_instance():
    notice = parse_event(
        _event(
            "SSM Managed Instance Registration",
            "aws.ssm",
            {"instance-id": MI},
            [f"arn:aws:ssm:{REGION}:{ACCOUNT}:managed-instance/{MI}"],
        )
    )
    assert notice.changes.instances == {MI}


def test_ids_count_only_as_whole_tokens():
    notice = parse_event(
        _api_call(
            "aws.workspaces",
            "CreateTags",
            {
                "resourceId": "xws-0a1b2c3d4",
                "note": "mi-0123456789abcdef0ff ws-0A1B2C3D4",
                "id": WS,
            },
        )
    )
    assert notice.changes.workspaces == {WS} and notice.changes.instances == set()


SECRET = "hunter2-do-not-echo"


@pytest.mark.parametrize(
    "body",
    [
        "not json " + SECRET,
        json.dumps([SECRET]),
        json.dumps({"source": "aws.s3", "detail-type": "x", "detail": {}, "note": SECRET}),
        json.dumps(
            {"source": "aws.tag", "detail-type": "Tag Change on Resource", "detail": [SECRET]}
        ),
        json.dumps({"source": "aws.tag", "detail-type": "Tag Change on Resource", "detail": {}}),
        json.dumps(
            {
                "source": "aws.ssm",
                "detail-type": "AWS API Call via CloudTrail",
                "account": ACCOUNT,
                "region": REGION,
                "detail": {"eventName": "Add Tags; " + SECRET},
            }
        ),
        _api_call("aws.ssm", "AddTagsToResource", {"a": [[[[[[[[[[[[[[[[SECRET]]]]]]]]]]]]]]]]}),
        _api_call("aws.ssm", "AddTagsToResource", {"many": [SECRET] * 6000}),
        "x" * (256 * 1024 + 1),
        _event("Something Else", "aws.ssm", {"x": SECRET}),
        # 250 KB of nesting: deeper than the JSON decoder itself goes (a RecursionError once
        # escaped, and the message came back forever, holding the worker's whole batch).
        _event(TAG_CHANGE_TYPE, "aws.tag", {"tags": {}, SECRET: "NESTING"}).replace(
            '"NESTING"', "[" * 125_000 + "]" * 125_000
        ),
        # 10,000 ids in one string of a request, and 3,000 ARNs in resources: no delivered event
        # names more than 50 resources (a batch call takes 25); read, each id costs two calls.
        _api_call(
            "aws.workspaces",
            "ModifyWorkspaceProperties",
            {"workspaceId": " ".join(f"ws-{n:08x}" for n in range(10_000)), SECRET: 1},
        ),
        _event(
            TAG_CHANGE_TYPE,
            "aws.tag",
            {"tags": {SECRET: "1"}},
            [f"arn:aws:workspaces:{REGION}:{ACCOUNT}:workspace/ws-{n:08x}" for n in range(3000)],
        ),
    ],
)
def test_what_no_rule_delivers_is_refused_without_quoting_it(body):
    with pytest.raises(BadEvent) as refused:
        parse_event(body)
    assert SECRET not in str(refused.value)


def test_the_largest_event_aws_sends_is_read_whole():
    """TerminateWorkspaces of 25 WorkSpaces whose response lists 25 more (the most a delivered
    event names): every one is read, none refused."""
    ids = [f"ws-{n:08x}" for n in range(50)]
    request = {"terminateWorkspaceRequests": [{"workspaceId": i} for i in ids[:25]]}
    response = {"failedRequests": [{"workspaceId": i, "errorCode": "x"} for i in ids[25:]]}
    notice = parse_event(_api_call("aws.workspaces", "TerminateWorkspaces", request, response))
    assert notice.changes.workspaces == set(ids)
    with pytest.raises(BadEvent, match="51 resources"):
        parse_event(
            _api_call("aws.workspaces", "TerminateWorkspaces", request, {**response, "x": MI})
        )


def test_it_reads_what_the_sandbox_really_sends(sandbox):
    from tests.engine.helpers import make_fleet
    from tests.events.stack import deploy_events

    url = deploy_events(sandbox)
    [workspace] = make_fleet(sandbox, finance=1, engineering=0)
    sandbox.client("workspaces").create_tags(
        ResourceId=workspace, Tags=[{"Key": "CostCenter", "Value": "1"}]
    )
    sqs = sandbox.client("sqs")
    notices = []
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages"):
        for message in messages:
            notices.append(parse_event(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(n.type for n in notices) == [
        "CreateTags",
        "CreateWorkspaces",
        "Tag Change on Resource",
    ]
    assert all(n.changes.workspaces == {workspace} for n in notices)
    assert all((n.account, n.region) == (ACCOUNT, REGION) for n in notices)
