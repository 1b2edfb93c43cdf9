"""``POST /webhook``: a git push triggers an immediate fetch and reconcile.

GitHub signs each delivery with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``
using a shared secret. Only a correctly signed ``push`` (``X-GitHub-Event``) to the followed ref
triggers; the trigger sets an event, so any number of pushes during one reconcile coalesce into
one more pass.

A signature proves who wrote a body, not that this is the first time it arrives: anyone who saw
one delivery (a proxy log, a leaked request) could send it again, as often as they like. So a
signed delivery whose ``X-GitHub-Delivery`` id, or whose body, was already seen is dropped
(``replayed``). The header is not signed, hence the body as well: a replay with a fresh id still
carries the old body, while two real pushes never have the same body (their ``after``, commits
and timestamps differ). The last ``REPLAY_MEMORY`` ids and body digests are remembered (bounded
memory; a body older than that is a push long since reconciled). Every request is counted in
``fleet_webhook_requests_total{result}``:

========================  ======  ==========================================================
result                    status  when
========================  ======  ==========================================================
accepted                  202     signed push to the followed ref: fetch and reconcile now
ignored                   202     signed, but another event (``ping``...) or another ref
missing_signature         401     no ``X-Hub-Signature-256``
bad_signature             401     a signature that does not match the body
too_large                 413     a body over the cap (never read into memory)
bad_request               400     signed, but the body is not a JSON object
replayed                  409     signed, but its delivery id or body was seen before
========================  ======  ==========================================================

No route is mounted without a secret: an unsigned endpoint would let anyone make the controller
hammer its git server and AWS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from controller.observability.http import ObservabilityServer
from controller.observability.metrics import Metrics
from controller.observability.redaction import register_secret

log = structlog.get_logger("fleet_controller.service.webhook")

PATH = "/webhook"
SECRET_ENV = "FLEET_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # a push payload lists at most 20 commits; far below this
MIN_SECRET_LENGTH = 16
REPLAY_MEMORY = 4096
RESULTS = (
    "accepted",
    "ignored",
    "missing_signature",
    "bad_signature",
    "too_large",
    "bad_request",
    "replayed",
)

Response = tuple[int, Mapping[str, str], bytes]


class WebhookSecretError(ValueError):
    pass


def load_secret(secret_file: Path | None, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The secret from ``--webhook-secret-file`` or ``FLEET_WEBHOOK_SECRET``; None when neither.

    A file's trailing newline is not part of the secret (``echo`` and Kubernetes Secrets add one).
    """
    if secret_file is not None:
        try:
            text = secret_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise WebhookSecretError(f"cannot read the webhook secret file: {error}") from None
    elif environ.get(SECRET_ENV):
        text = environ[SECRET_ENV]
    else:
        return None
    if len(text) < MIN_SECRET_LENGTH:
        raise WebhookSecretError(
            f"the webhook secret must be at least {MIN_SECRET_LENGTH} characters"
        )
    register_secret(text)
    return text.encode("utf-8")


def _bounded(text: str | None, limit: int = 128) -> str | None:
    """At most ``limit`` characters of a caller's value, for the log and the replay memory."""
    return text[:limit] if text else None


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def followed_refs(ref: str | None) -> frozenset[str] | None:
    """The push ``ref`` values that mean the followed ref (None: any push triggers)."""
    if ref is None:
        return None
    if ref.startswith("refs/"):
        return frozenset({ref})
    return frozenset({ref, f"refs/heads/{ref}", f"refs/tags/{ref}"})


class SeenDeliveries:
    """The most recent ``limit`` keys, oldest forgotten first; safe across request threads."""

    def __init__(self, limit: int = REPLAY_MEMORY) -> None:
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, *keys: str) -> bool:
        """Remember ``keys``; False when any of them was remembered already."""
        with self._lock:
            fresh = not any(key in self._keys for key in keys)
            for key in keys:
                self._keys[key] = None
                self._keys.move_to_end(key)
            while len(self._keys) > self.limit:
                self._keys.popitem(last=False)
            return fresh

    def __len__(self) -> int:
        return len(self._keys)


class Webhook:
    def __init__(
        self,
        secret: bytes,
        trigger: Callable[[], None],
        metrics: Metrics,
        ref: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if not secret:
            raise WebhookSecretError("a webhook needs a secret")
        self._secret = secret
        self._trigger = trigger
        self._metrics = metrics
        self._refs = followed_refs(ref)
        self.max_body_bytes = max_body_bytes
        self.seen = SeenDeliveries()
        for result in RESULTS:  # present from the start, so rate() and alerts see zeros
            metrics.webhook_requests_total.labels(result=result)

    def mount(self, server: ObservabilityServer) -> None:
        server.add_route(
            "POST",
            PATH,
            self.handle,
            max_body_bytes=self.max_body_bytes,
            on_too_large=lambda: self._count("too_large", None),
        )

    def handle(self, headers: Mapping[str, str], body: bytes) -> Response:
        # Headers are the caller's, signed or not: only a bounded part is remembered or logged.
        delivery = _bounded(headers.get(DELIVERY_HEADER))
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            return self._answer(401, "missing_signature", delivery)
        if not hmac.compare_digest(
            signature.strip().encode("ascii", "replace"), sign(self._secret, body).encode()
        ):
            return self._answer(401, "bad_signature", delivery)
        keys = [f"body:{hashlib.sha256(body).hexdigest()}"]
        if delivery:
            keys.append(f"id:{delivery}")
        if not self.seen.first_time(*keys):
            return self._answer(409, "replayed", delivery)
        event = headers.get(EVENT_HEADER, "")
        if event != "push":
            return self._answer(202, "ignored", delivery, github_event=_bounded(event))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self._answer(400, "bad_request", delivery)
        pushed = payload.get("ref")
        if self._refs is not None and pushed not in self._refs:
            return self._answer(202, "ignored", delivery, ref=_bounded(str(pushed)))
        self._trigger()
        after = payload.get("after")
        return self._answer(
            202, "accepted", delivery, ref=_bounded(str(pushed)), after=_bounded(str(after))
        )

    def _answer(
        self, status: int, result: str, delivery: str | None, **fields: str | None
    ) -> Response:
        self._count(result, delivery, **fields)
        body = json.dumps({"result": result}).encode()
        return status, {"Content-Type": "application/json"}, body

    def _count(self, result: str, delivery: str | None, **fields: str | None) -> None:
        self._metrics.webhook_requests_total.labels(result=result).inc()
        event = log.info if result in ("accepted", "ignored") else log.warning
        event("webhook request", result=result, delivery=delivery, **fields)
