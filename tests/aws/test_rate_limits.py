"""README, One place for AWS calls: rate-limited per service below AWS's limits (WorkSpaces about
2 calls/s, burst 5), with the default rates on, as production runs (the other tests turn them off
to go fast).

The pacing is checked as a lower bound on elapsed time, which a loaded machine can only make
larger; the mutation check removes the limit and sees it fail.
"""

from __future__ import annotations

import time

import pytest

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.aws.ratelimit import DEFAULT_RATES, RateLimiter, TokenBucket


def test_the_default_settings_carry_the_default_rates():
    assert AwsSettings().rate_limits == DEFAULT_RATES
    assert DEFAULT_RATES["workspaces"] == (2.0, 5.0)  # README: about 2 calls/s, burst 5


def test_workspaces_calls_are_paced_at_two_a_second_after_a_burst_of_five(sandbox):
    api = AwsApi(AwsSettings(region="us-east-1", endpoint_url=sandbox.endpoint), CallRecorder())
    calls = 15
    started = time.monotonic()
    for _ in range(calls):
        api.call("workspaces", "DescribeWorkspaces", Limit=25)
    elapsed = time.monotonic() - started
    rate, burst = DEFAULT_RATES["workspaces"]
    assert elapsed >= (calls - burst) / rate - 0.05, elapsed  # 5 s: ten calls beyond the burst
    assert sandbox.admin.call_counts("workspaces")["DescribeWorkspaces"] == calls


def test_each_service_has_its_own_bucket_and_an_unlisted_service_is_not_limited():
    limiter = RateLimiter({"workspaces": (2.0, 5.0), "ssm": (10.0, 20.0)})
    for _ in range(5):
        assert limiter.acquire("workspaces") == 0.0
    for _ in range(20):
        assert limiter.acquire("ssm") == 0.0  # the WorkSpaces burst spent nothing of SSM's
    for _ in range(100):
        assert limiter.acquire("sts") == 0.0


class FakeTime:
    """A monotonic clock and a sleep that moves it: a bucket's waits, without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waited: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waited.append(seconds)
        self.now += seconds


def test_token_bucket_waits_when_the_burst_is_spent():
    time_ = FakeTime()
    bucket = TokenBucket(rate=2.0, burst=5, clock=time_.clock, sleep=time_.sleep)
    for _ in range(5):
        assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)
    assert bucket.acquire() == pytest.approx(0.5)
    assert sum(time_.waited) == pytest.approx(1.0)


def test_an_idle_bucket_holds_no_more_than_its_burst():
    time_ = FakeTime()
    bucket = TokenBucket(rate=2.0, burst=5, clock=time_.clock, sleep=time_.sleep)
    time_.now += 3600.0  # an hour idle earns 7,200 tokens; it keeps 5
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.acquire() == pytest.approx(0.5)
    assert time_.waited == [pytest.approx(0.5)]
