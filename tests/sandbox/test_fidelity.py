"""The sandbox against botocore's models, across every operation it serves itself.

Model patterns are enforced with the ``regex`` package (Java's ``\\p{L}`` classes included), the
fidelity report lists what is still unchecked, and a bad input is always an AWS-shaped 4xx.
"""

from __future__ import annotations

import botocore.exceptions
import pytest
from botocore.config import Config

from fleet_sandbox.shapes import unenforced_patterns, validate_input
from tests.sandbox._ssm_helpers import add_instance

NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.mark.parametrize("key", ["a#b,c*", "semi;colon", "back\\slash", "tab\tkey"])
def test_a_tag_key_outside_the_unicode_pattern_is_refused(sandbox, key):
    instance = add_instance(1)
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.add_tags_to_resource(
            ResourceType="ManagedInstance", ResourceId=instance, Tags=[{"Key": key, "Value": "v"}]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "regular expression pattern" in raised.value.response["Error"]["Message"]
    assert (
        ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)["TagList"]
        == []
    )


def test_letters_spaces_and_digits_of_any_script_pass_the_unicode_pattern(sandbox):
    instance = add_instance(1)
    ssm = sandbox.client("ssm")
    tags = [
        {"Key": "Kostenstelle Büro", "Value": "東京 ٣ 4100"},
        {"Key": "a:b/c=d+e-f@g", "Value": ""},
    ]
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=instance, Tags=tags)
    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)
    assert sorted(t["Key"] for t in listed["TagList"]) == sorted(t["Key"] for t in tags)


def test_unicode_patterns_are_checked_offline_too():
    problems = validate_input(
        "ssm",
        "CreateActivation",
        {"IamRole": "r", "DefaultInstanceName": "WSAMZN-1*", "Tags": [{"Key": "ok", "Value": "v"}]},
    )
    assert any("DefaultInstanceName" in p.lower() or "defaultInstanceName" in p for p in problems)
    assert (
        validate_input("ssm", "CreateActivation", {"IamRole": "r", "DefaultInstanceName": "Ws 1"})
        == []
    )


def test_the_fidelity_report_lists_served_operations_and_no_unenforced_pattern(sandbox):
    report = sandbox.admin.get("fidelity")
    assert "ssm:DescribeInstanceInformation" in report["operations"]
    assert report["unenforcedPatterns"] == {
        service: {} for service in ("resourcegroupstaggingapi", "ssm", "workspaces")
    }
    assert unenforced_patterns("ssm") == {}
