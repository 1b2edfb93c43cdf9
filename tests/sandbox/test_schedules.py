"""Association schedules: the sandbox enforces AWS's association rules on its own, over the wire.

Each row is a fact from AWS's "Reference: Cron and rate expressions for Systems Manager" (section
"Cron and rate expressions for associations") or the CreateAssociation reference; the sandbox's
rules live in fleet_sandbox/schedule.py and share no code with the controller's validation.
"""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.sandbox._ssm_helpers import add_instance

CONFIGURE = "AWS-ConfigureAWSPackage"
NO_RETRY = Config(retries={"total_max_attempts": 1})


def _create(sandbox, **schedule):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    return ssm.create_association(
        Name=CONFIGURE,
        Parameters={"action": ["Install"], "name": ["Acme"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
        **schedule,
    )


ACCEPTED = [
    ("cron(0/30 * * * ? *)", "every 30 minutes"),
    ("cron(0 */30 * * * ? *)", "every 30 minutes, with the Seconds field 0"),
    ("cron(0 0/1 * * ? *)", "every hour"),
    ("cron(0 0/2 * * ? *)", "every 2 hours"),
    ("cron(0 0/4 * * ? *)", "every 4 hours"),
    ("cron(0 0/8 * * ? *)", "every 8 hours"),
    ("cron(0 0/12 * * ? *)", "every 12 hours"),
    ("cron(15 13 ? * * *)", "every day at 13:15"),
    ("cron(15 13 ? * MON *)", "every Monday at 13:15"),
    ("cron(0 9 ? * MON-FRI *)", "weekdays at 09:00 (a set of days for 'every week')"),
    ("cron(0 0 ? * THU#2 *)", "the second Thursday, the reference's own offset example"),
    ("cron(0 2 ? * 6L *)", "the last Friday of the month"),
    ("cron(30 7 */3 * ? *)", "every third day"),
    # Not in AWS's association table, nor refused there (unverified): accepted by the sandbox as by
    # the controller's validate, so the two never disagree on them.
    ("cron(0 8 15 * ? *)", "one day of every month"),
    ("cron(0 2 L * ? *)", "the last day of every month"),
    ("cron(0 8 ? * MON 2030)", "a year"),
    ("rate(30 minutes)", "the shortest rate"),
    ("rate(30 days)", "a rate under 31 days"),
    ("rate(1 hour)", "singular unit for 1"),
]

REFUSED = [
    ("cron(0/5 * * * ? *)", "every 5 minutes: faster than associations run"),
    ("cron(0 0/3 * * ? *)", "every 3 hours is not among 1, 2, 4, 8, 12"),
    ("cron(30 0 0/6 * * ? *)", "a Seconds field other than 0"),
    ("cron(0 8 ? 3 MON *)", "a specific month"),
    ("cron(0 8,20 ? * * *)", "two times of day"),
    ("cron(0 0/2 ? * MON *)", "an hourly step on given days only"),
    ("cron(0 8 * * * *)", "both day fields '*'"),
    ("cron(0 8 32 * ? *)", "day 32 of the month"),
    ("rate(29 minutes)", "under 30 minutes"),
    ("rate(31 days)", "31 days or more"),
    ("rate(90 days)", "far over 31 days"),
    ("rate(1 hours)", "plural unit for 1"),
    ("at(2030-02-30T10:00:00)", "February 30th does not exist"),
    ("at(2030-13-01T10:00:00)", "month 13"),
    ("at(2030-01-01T24:00:00)", "hour 24"),
]


@pytest.mark.parametrize(("expression", "why"), ACCEPTED)
def test_association_schedules_aws_accepts(sandbox, expression, why):
    add_instance(1, {"App": "Acme"})
    described = _create(sandbox, ScheduleExpression=expression)["AssociationDescription"]
    assert described["ScheduleExpression"] == expression


@pytest.mark.parametrize(("expression", "why"), REFUSED)
def test_association_schedules_aws_refuses_are_client_errors(sandbox, expression, why):
    with pytest.raises(ClientError) as raised:
        _create(sandbox, ScheduleExpression=expression)
    assert raised.value.response["Error"]["Code"] == "InvalidSchedule", why
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sandbox.client("ssm").list_associations()["Associations"] == []


def test_at_with_apply_only_at_cron_interval_is_valid(sandbox):
    described = _create(
        sandbox, ScheduleExpression="at(2030-07-07T15:55:00)", ApplyOnlyAtCronInterval=True
    )["AssociationDescription"]
    assert described["ApplyOnlyAtCronInterval"] is True


def test_schedule_offset_needs_apply_only_at_cron_interval_and_a_cron(sandbox):
    cron = "cron(0 0 ? * THU#2 *)"
    with pytest.raises(ClientError) as raised:
        _create(sandbox, ScheduleExpression=cron, ScheduleOffset=3)
    assert raised.value.response["Error"]["Code"] == "InvalidSchedule"
    with pytest.raises(ClientError) as raised:
        _create(
            sandbox,
            ScheduleExpression="at(2030-07-07T15:55:00)",
            ScheduleOffset=3,
            ApplyOnlyAtCronInterval=True,
        )
    assert raised.value.response["Error"]["Code"] == "InvalidSchedule"
    described = _create(
        sandbox, ScheduleExpression=cron, ScheduleOffset=3, ApplyOnlyAtCronInterval=True
    )["AssociationDescription"]
    assert described["ScheduleOffset"] == 3


def test_apply_only_at_cron_interval_is_refused_with_a_rate(sandbox):
    with pytest.raises(ClientError) as raised:
        _create(sandbox, ScheduleExpression="rate(1 day)", ApplyOnlyAtCronInterval=True)
    assert raised.value.response["Error"]["Code"] == "InvalidSchedule"
