"""The webhook end to end: a signed push makes the running controller fetch and reconcile at once.

The controller's interval is five minutes, so any reconcile after the first one within the test
was triggered. Rejected requests (bad signature, missing signature, oversized body, another
event) are answered and counted, and the signed push that follows is what brings the new commit.
That a rejected request triggers nothing, and that a burst coalesces into one more fetch and pass,
is proven where it can be without waiting for nothing to happen: the webhook's handler counts its
trigger calls synchronously (tests/runtime/test_webhook.py), and the runtime's coalescing is held
with gated fetches and the poller's observable idle point (tests/runtime/test_runtime.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from controller.service.webhook import sign
from tests.e2e import fleet
from tests.e2e.harness import Controller, eventually, http_post
from tests.runtime.gitrepo import GitRemote, git
from tests.runtime.helpers import activation

pytestmark = pytest.mark.timeout(180)

SECRET = "e2e-webhook-secret-0123456789"
REGION = "us-east-1"
INTERVAL = 300.0


def push_payload(sha: str, pushed_at: int = 0) -> bytes:
    """A push's body; real pushes always differ (commits, timestamps), hence ``pushed_at``."""
    return json.dumps(
        {"ref": "refs/heads/main", "after": sha, "commits": [], "pushed_at": pushed_at}
    ).encode()


def headers(body: bytes, event: str = "push", signature: str | None = None) -> dict[str, str]:
    found = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),  # GitHub gives every delivery its own GUID
        "X-Hub-Signature-256": sign(SECRET.encode(), body) if signature is None else signature,
    }
    return {k: v for k, v in found.items() if v}


def test_a_signed_push_triggers_a_reconcile_and_bad_requests_do_not(sandbox, tmp_path: Path):
    remote = GitRemote(tmp_path / "repo")
    first = remote.commit({"fleet/alpha.yaml": activation("alpha")}, "one activation")
    controller = Controller(
        ["--git-url", remote.url, "--git-path", "fleet", "--interval", str(INTERVAL),
         "--endpoint-url", sandbox.endpoint, "--region", REGION,
         "--webhook-max-bytes", "65536"],
        tmp_path,
        env={"FLEET_WEBHOOK_SECRET": SECRET},
    )  # fmt: skip
    webhook = f"{controller.url}/webhook"

    def reconciles() -> float:
        return controller.value("fleet_reconciles_total", target="default", result="success") or 0

    def webhook_results(result: str) -> float:
        return controller.value("fleet_webhook_requests_total", result=result) or 0

    try:
        eventually(lambda: reconciles() == 1, 60, what="the first reconcile")
        assert controller.revision() == first
        second = remote.commit({"fleet/bravo.yaml": activation("bravo")}, "a second activation")
        body = push_payload(second)

        forged = sign(b"not-the-secret-at-all-really", body)
        assert http_post(webhook, body, headers(body, signature=forged)) == 401
        assert http_post(webhook, body, headers(body, signature="")) == 401
        big = json.dumps({"ref": "refs/heads/main", "pad": "x" * 100_000}).encode()
        assert http_post(webhook, big, headers(big)) == 413
        ping = b'{"zen": "Design for failure."}'
        assert http_post(webhook, ping, headers(ping, event="ping")) == 202
        for result in ("bad_signature", "missing_signature", "too_large", "ignored"):
            assert webhook_results(result) == 1, result  # counted before the answer was sent
        assert webhook_results("accepted") == 0

        assert http_post(webhook, body, headers(body)) == 202
        eventually(lambda: reconciles() == 2, 30, what="a reconcile long before the interval")
        assert controller.revision() == second
        assert webhook_results("accepted") == 1
        ssm = fleet.client(sandbox.endpoint, "ssm", REGION)
        names = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
        assert "/fleet-controller/activations/bravo" in names  # the pushed commit is live

        # The same signed delivery again (as captured, or with a fresh delivery id) is dropped.
        replayed = reconciles()
        assert http_post(webhook, body, headers(body)) == 409
        assert webhook_results("replayed") == 1

        # A burst of ten signed pushes: every one accepted, the last commit reconciled.
        third = remote.commit({"fleet/charlie.yaml": activation("charlie")}, "a third")
        before = reconciles()
        assert before == replayed  # the replay triggered nothing
        for index in range(10):
            body = push_payload(third, pushed_at=index)
            assert http_post(webhook, body, headers(body)) == 202
        assert webhook_results("accepted") == 11  # each counted before it was answered
        eventually(lambda: controller.revision() == third, 30)
        eventually(lambda: reconciles() > before, 30)  # and a pass with it followed
        assert git("rev-parse", "HEAD", cwd=remote.work) == third
    finally:
        assert controller.stop() == 0, controller.log()[-3000:]
