"""The webhook over real HTTP: only a correctly signed push to the followed ref triggers."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from pathlib import Path

import pytest

from controller.observability.http import ObservabilityServer
from controller.observability.metrics import Metrics
from controller.observability.redaction import REDACTED, redact_text
from controller.service.webhook import (
    SeenDeliveries,
    Webhook,
    WebhookSecretError,
    followed_refs,
    load_secret,
    sign,
)

SECRET = b"a-webhook-secret-long-enough"
PUSH = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()


class Triggers:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def hook():
    metrics = Metrics()
    triggers = Triggers()
    server = ObservabilityServer(metrics, host="127.0.0.1", port=0)
    Webhook(SECRET, triggers, metrics, ref="main", max_body_bytes=4096).mount(server)
    with server:
        yield server, metrics, triggers


def post(server: ObservabilityServer, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/webhook", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def counted(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("fleet_webhook_requests_total", {"result": result})
    return value or 0.0


def github(body: bytes, event: str = "push", signature: str | None = None) -> dict[str, str]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4())}
    headers["X-Hub-Signature-256"] = signature if signature is not None else sign(SECRET, body)
    return headers


def test_a_signed_push_to_the_followed_branch_triggers(hook):
    server, metrics, triggers = hook
    status, body = post(server, PUSH, github(PUSH))
    assert (status, json.loads(body)) == (202, {"result": "accepted"})
    assert triggers.count == 1 and counted(metrics, "accepted") == 1


def test_a_bad_signature_is_rejected_and_counted(hook):
    server, metrics, triggers = hook
    forged = sign(b"another-secret-of-some-length", PUSH)
    assert post(server, PUSH, github(PUSH, signature=forged))[0] == 401
    tampered = PUSH.replace(b"main", b"evil")
    assert post(server, tampered, github(PUSH))[0] == 401  # the signature of another body
    assert post(server, PUSH, github(PUSH, signature="sha256=zz"))[0] == 401
    assert triggers.count == 0 and counted(metrics, "bad_signature") == 3


def test_a_missing_signature_is_rejected_and_counted(hook):
    server, metrics, triggers = hook
    headers = github(PUSH)
    del headers["X-Hub-Signature-256"]
    assert post(server, PUSH, headers)[0] == 401
    assert triggers.count == 0 and counted(metrics, "missing_signature") == 1


def test_an_oversized_body_is_rejected_unread_and_counted(hook):
    server, metrics, triggers = hook
    big = json.dumps({"ref": "refs/heads/main", "pad": "x" * 10_000}).encode()
    assert post(server, big, github(big))[0] == 413  # correctly signed, but over the cap
    assert triggers.count == 0 and counted(metrics, "too_large") == 1


def test_other_events_and_other_branches_are_ignored(hook):
    server, metrics, triggers = hook
    ping = b'{"zen": "Keep it logically awesome."}'
    assert post(server, ping, github(ping, event="ping"))[0] == 202
    other = json.dumps({"ref": "refs/heads/feature"}).encode()
    assert post(server, other, github(other))[0] == 202
    assert triggers.count == 0 and counted(metrics, "ignored") == 2


def test_a_signed_body_that_is_not_json_is_a_bad_request(hook):
    server, metrics, triggers = hook
    assert post(server, b"not json", github(b"not json"))[0] == 400
    assert triggers.count == 0 and counted(metrics, "bad_request") == 1


def test_every_result_is_exported_from_the_start(hook):
    _, metrics, _ = hook
    for result in ("accepted", "ignored", "missing_signature", "bad_signature", "too_large"):
        assert counted(metrics, result) == 0
        assert (
            metrics.registry.get_sample_value("fleet_webhook_requests_total", {"result": result})
            is not None
        )


def test_followed_refs():
    assert followed_refs("main") == {"main", "refs/heads/main", "refs/tags/main"}
    assert followed_refs("refs/heads/release") == {"refs/heads/release"}
    assert followed_refs(None) is None


def test_the_secret_comes_from_a_file_or_the_environment_and_is_redacted(tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-kubernetes-secret-file\n")
    assert load_secret(secret_file, {}) == b"from-a-kubernetes-secret-file"
    assert redact_text("x from-a-kubernetes-secret-file") == f"x {REDACTED}"
    env = {"FLEET_WEBHOOK_SECRET": "from-the-environment-variable"}
    assert load_secret(None, env) == b"from-the-environment-variable"
    assert load_secret(None, {}) is None
    with pytest.raises(WebhookSecretError, match="at least 16 characters"):
        load_secret(None, {"FLEET_WEBHOOK_SECRET": "short"})
    with pytest.raises(WebhookSecretError, match="cannot read"):
        load_secret(tmp_path / "missing", {})


def test_a_replayed_signed_delivery_is_dropped(hook):
    """Hole 8 of issue 9: the signature covers the body, not its freshness. A captured delivery
    sent again - as it was, or with a new X-GitHub-Delivery header - triggers nothing."""
    server, metrics, triggers = hook
    captured = github(PUSH)
    assert post(server, PUSH, captured)[0] == 202
    status, body = post(server, PUSH, captured)
    assert (status, json.loads(body)) == (409, {"result": "replayed"})
    assert post(server, PUSH, github(PUSH))[0] == 409  # same body, a fresh delivery id
    other = json.dumps({"ref": "refs/heads/main", "after": "1" * 40}).encode()
    assert (
        post(server, other, {**github(other), "X-GitHub-Delivery": captured["X-GitHub-Delivery"]})[
            0
        ]
        == 409
    )
    assert triggers.count == 1
    assert counted(metrics, "accepted") == 1 and counted(metrics, "replayed") == 3


def test_an_unsigned_or_forged_request_does_not_use_up_a_delivery(hook):
    """Only signed deliveries are remembered: nobody without the secret can make the controller
    drop a real delivery by sending its id or body first."""
    server, _, triggers = hook
    real = github(PUSH)
    forged = {**real, "X-Hub-Signature-256": sign(b"not-the-secret-at-all-really", PUSH)}
    assert post(server, PUSH, forged)[0] == 401
    assert post(server, PUSH, real)[0] == 202
    assert triggers.count == 1


def test_replay_memory_is_bounded_and_concurrent_deliveries_count_once():
    seen = SeenDeliveries(limit=100)
    for index in range(1000):
        assert seen.first_time(f"body:{index}", f"id:{index}")
    assert len(seen) == 100
    assert not seen.first_time("id:999")  # the newest are remembered
    assert seen.first_time("id:1")  # the oldest were forgotten

    fresh: list[bool] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        fresh.append(seen.first_time("body:same", "id:same"))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(fresh) == [False] * 7 + [True]


def test_an_unsigned_request_cannot_write_its_headers_into_the_log_at_length(hook):
    """Anyone who reaches the port may POST: a 60 KB X-GitHub-Delivery (or event name) on each
    unsigned request must not become a 60 KB warning line each, or a flood of them fills the
    controller's log volume. What is logged of them is bounded."""
    from structlog.testing import capture_logs

    server, _, _ = hook
    huge = "d" * 60_000
    with capture_logs() as logged:
        status, _ = post(server, PUSH, {"X-GitHub-Delivery": huge, "X-GitHub-Event": huge})
        signed = github(PUSH, event="x" * 60_000)
        signed["X-GitHub-Delivery"] = huge
        assert post(server, PUSH, signed)[0] == 202
    assert status == 401
    lines = [e for e in logged if e["event"] == "webhook request"]
    assert len(lines) == 2
    assert all(len(json.dumps(e)) < 1024 for e in lines), [len(json.dumps(e)) for e in lines]
