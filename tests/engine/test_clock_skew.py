"""Clock skew (issue 9, hole 5): expiry is judged on AWS's clock, with a tolerance of minutes.

The sandbox plays an AWS whose clock runs a minute ahead of or behind the controller's host: its
activations' dates and every response's ``Date`` header follow its clock. The controller runs on
the host's clock (no test clock injected), as in production.
"""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.aws.clock import AwsClock
from tests.engine.helpers import controller, copy_example, load, writes


def _skew_gauge(metrics_text: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "fleet_aws_clock_skew_seconds":
            [sample] = family.samples
            return float(sample.value)
    return None


@pytest.mark.parametrize("skew", [60, -60, 240, -240])
def test_a_skewed_aws_clock_creates_one_activation_and_never_rotates_it(sandbox, tmp_path, skew):
    """The example's activation is valid for 30 days, the most AWS allows: with AWS behind, an
    expiry from the host's clock is refused; with it ahead, the lifetime AWS reports looked a
    minute short and every pass replaced the activation."""
    sandbox.admin.skew_clock(skew)
    desired = load(copy_example(tmp_path / "desired", only=("activation.yaml",)))
    reconciler = controller(sandbox, use_sandbox_clock=False)
    plan, result = reconciler.reconcile(desired)
    assert result.ok, result.failed
    assert [op.action.value for op in plan.operations] == ["create"]
    for _ in range(3):
        sandbox.admin.reset_calls()
        plan, result = reconciler.reconcile(desired)
        assert result.ok and plan.operations == [], [op.reason for op in plan.operations]
        assert writes(sandbox) == {}
    listed = sandbox.client("ssm").describe_activations()["ActivationList"]
    assert len(listed) == 1
    measured = _skew_gauge(reconciler.metrics.text())
    assert measured is not None and abs(measured - skew) < 3, measured


def test_the_published_expiry_is_on_aws_clock(sandbox, tmp_path):
    sandbox.admin.skew_clock(-600)  # ten minutes behind: beyond the tolerance
    desired = load(copy_example(tmp_path / "desired", only=("activation.yaml",)))
    reconciler = controller(sandbox, use_sandbox_clock=False)
    _, result = reconciler.reconcile(desired)
    assert result.ok, result.failed
    [activation] = sandbox.client("ssm").describe_activations()["ActivationList"]
    lifetime = activation["ExpirationDate"] - activation["CreatedDate"]
    assert abs(lifetime.total_seconds() - (30 * 86400 - 60)) < 5  # 30 days less the margin
    parameter = sandbox.client("ssm").get_parameter(
        Name="/fleet-controller/activations/workspaces", WithDecryption=True
    )
    published = json.loads(parameter["Parameter"]["Value"])
    assert published["expiry"] == activation["ExpirationDate"].isoformat(timespec="seconds")


def test_the_skew_is_unknown_until_the_first_answer_then_follows_the_latest():
    host = [1_000_000.0]
    clock = AwsClock(local=lambda: host[0])
    assert clock.skew_seconds is None
    assert clock.now().timestamp() == host[0]
    clock.observe(formatdate(host[0] + 90, usegmt=True), sent=host[0] - 0.2, received=host[0])
    assert clock.skew_seconds == pytest.approx(90.6)  # half a second of truncation, half the trip
    assert clock.now().timestamp() == pytest.approx(host[0] + 90.6)
    clock.observe("not a date", sent=host[0], received=host[0])
    clock.observe(None, sent=host[0], received=host[0])
    assert clock.skew_seconds == pytest.approx(90.6)  # bad headers are ignored
    clock.observe(formatdate(host[0] - 30, usegmt=True), sent=host[0], received=host[0])
    assert clock.skew_seconds == pytest.approx(-29.5)
