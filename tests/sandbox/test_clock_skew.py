"""The sandbox's clock can disagree with the host's, and its Date headers say so (as AWS's do)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def _date_header(sandbox) -> float:
    answer = sandbox.client("ssm").describe_activations()
    return parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"]).timestamp()


def test_date_headers_follow_a_skew_either_way_and_reset_clears_it(sandbox):
    for skew in (90, -90):
        sandbox.admin.skew_clock(skew)
        assert abs(_date_header(sandbox) - time.time() - skew) < 3
        now = datetime.fromisoformat(sandbox.admin.get("clock")["now"])
        assert abs((now - datetime.now(UTC)).total_seconds() - skew) < 3
    sandbox.admin.reset()
    assert abs(_date_header(sandbox) - time.time()) < 3


def test_activation_dates_follow_the_skewed_clock(sandbox):
    sandbox.admin.skew_clock(-3600)
    ssm = sandbox.client("ssm")
    created = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=1)
    [listed] = [
        a
        for a in ssm.describe_activations()["ActivationList"]
        if a["ActivationId"] == created["ActivationId"]
    ]
    assert abs(listed["CreatedDate"].timestamp() - (time.time() - 3600)) < 5


def test_a_skew_beyond_a_day_is_refused(sandbox):
    try:
        sandbox.admin.skew_clock(2 * 86400)
    except Exception as error:
        assert "at most a day" in str(error)
    else:
        raise AssertionError("a two-day skew was accepted")
