"""The enrollment decision: is the caller the WorkSpace it claims to be, and if so, its activation.

For each ask, in this order (the first "no" answers):

1. the caller's address (``addresses``), and admission (``admission``): per address, then overall;
2. a body that is exactly ``{"computerName": <a DNS label>}``;
3. an Enrollment in the current desired state (otherwise: unavailable, not refused);
4. exactly one WorkSpace of an Enrollment's directories, in one target, has that IpAddress;
5. it is AVAILABLE, and its ComputerName is the claimed name (case-insensitive, host part);
6. this replica may write to the target (holds its lease);
7. its unused activation, or a new one (``issuer``); a new one wakes the target's loop, so the
   pass that follows the registration comes within seconds, not an interval.

Every decision is counted in ``fleet_enrollment_requests_total{result}`` and logged with the
address, the claimed name, the WorkSpace and the activation ID, never the code. Rate-limited asks
are logged once a minute (per address for the per-address limit, once for all for the overall
limit and the in-flight bound) with how many were refused since, so a flood cannot flood the log
as well; every one is counted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import structlog

from controller.kinds.matching import LiveWorkspace
from controller.manifests import DesiredState, Manifest
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text
from controller.service.enrollment import protocol
from controller.service.enrollment.addresses import BadForwardedFor, Network, client_address
from controller.service.enrollment.admission import Admission
from controller.service.enrollment.directory import AVAILABLE, WorkspaceDirectory
from controller.service.enrollment.identity import same_computer
from controller.service.enrollment.issuer import ActivationIssuer, EnrollmentError

log = structlog.get_logger("fleet_controller.service.enrollment")

RETRY_AFTER_UNAVAILABLE = 15.0
RETRY_AFTER_BUSY = 5.0
RATE_LIMIT_LOG_EVERY = 60.0  # seconds between log lines about one address being rate limited


@dataclass
class EnrollmentTarget:
    """What enrollment needs of one target: its WorkSpaces, its issuer, its lease, its loop."""

    name: str
    directory: WorkspaceDirectory
    issuer: ActivationIssuer
    may_write: Callable[[], bool] = lambda: True
    wake: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Answer:
    status: int
    result: str
    body: bytes = field(repr=False)  # an issued answer carries the code: never printed
    headers: Mapping[str, str] = field(default_factory=dict)


class EnrollmentService:
    def __init__(
        self,
        desired: Callable[[], DesiredState | None],
        targets: Sequence[EnrollmentTarget],
        metrics: Metrics,
        admission: Admission,
        trusted_proxies: Sequence[Network] = (),
        pending_window: timedelta = timedelta(minutes=2),
    ) -> None:
        self.desired = desired
        self.targets = {target.name: target for target in targets}
        self.metrics = metrics
        self.admission = admission
        self.trusted_proxies = tuple(trusted_proxies)
        self.pending_window = pending_window
        self._limited: dict[str, tuple[float, int]] = {}  # address -> (last logged, refused since)
        self._limited_lock = threading.Lock()
        for result in protocol.RESULTS:  # present from the start, so rate() and alerts see zeros
            metrics.enrollment_requests_total.labels(result=result)

    # -- the load balancer's and the loop's questions ------------------------------------------------

    def serving(self) -> bool:
        """Can this replica issue for any target (holds its lease)? The load balancer's health
        check asks, so asks reach a replica that can answer them."""
        return any(target.may_write() for target in self.targets.values())

    def pending(self, target: str) -> bool:
        """Did this target hand out an activation recently (a registration may be on its way)?"""
        found = self.targets.get(target)
        if found is None:
            return False
        since = found.issuer.clock() - self.pending_window
        return found.issuer.vault.issued_since(since) > 0

    # -- one ask -------------------------------------------------------------------------------------

    def busy(self, peer: str) -> Answer:
        """Too many asks in flight: answered at once, logged like a rate limit (once a minute)."""
        started = time.monotonic()
        context: dict[str, Any] = {"peer": peer, "source": peer}
        return self._rate_limited("busy", RETRY_AFTER_BUSY, context, started)

    def handle(self, peer: str, forwarded_for: Sequence[str], body: bytes | None) -> Answer:
        """Decide one ask. ``body`` is None when the listener refused to read it (too long, or
        without a length); admission still counts such an ask against its address. A failure
        of the decision itself (a bug) is answered 500 and logged, never a dropped connection."""
        started = time.monotonic()
        context: dict[str, Any] = {"peer": peer}
        try:
            return self._handle(peer, forwarded_for, body, context, started)
        except Exception as error:
            reason = redact_text(f"{type(error).__name__}: {error}")
            return self._decide("error", context, started, reason=reason)

    def _handle(
        self,
        peer: str,
        forwarded_for: Sequence[str],
        body: bytes | None,
        context: dict[str, Any],
        started: float,
    ) -> Answer:
        try:
            source = client_address(
                peer, forwarded_for, self.trusted_proxies, is_workspace=self._known_workspace
            )
        except BadForwardedFor as error:
            return self._decide("bad_request", context, started, reason=str(error))
        context["source"] = source
        refusal = self.admission.admit(source)
        if refusal is not None:
            return self._rate_limited(refusal.result, refusal.retry_after, context, started)
        claimed = _claimed_name(body) if body is not None else None
        if claimed is None:
            reason = "body" if body is not None else "body too long or without Content-Length"
            return self._decide("bad_request", context, started, reason=reason)
        context["computer_name"] = claimed
        desired = self.desired()
        enrollments = desired.of_kind("Enrollment") if desired is not None else []
        if not enrollments:
            reason = "no valid desired state yet" if desired is None else "no Enrollment declared"
            return self._decide("unavailable", context, started, reason=reason)
        scope = {d: m for m in enrollments for d in m.spec.workspaces.directory_ids}
        try:
            found = [
                (target, workspace)
                for target in self.targets.values()
                for workspace in target.directory.find(source, scope)
            ]
        except Exception as error:
            return self._failed(error, context, started)
        if not found:
            return self._decide("refused_no_workspace", context, started)
        if len(found) > 1:
            where = [f"{t.name}:{w.workspace_id}" for t, w in found]
            return self._decide("refused_ambiguous", context, started, workspaces=where)
        target, workspace = found[0]
        context.update(target=target.name, workspace_id=workspace.workspace_id)
        if workspace.state != AVAILABLE:
            return self._decide("refused_not_available", context, started, state=workspace.state)
        if not same_computer(claimed, workspace):
            return self._decide(
                "refused_name_mismatch", context, started, expected=workspace.computer_name
            )
        if not target.may_write():
            return self._decide("unavailable", context, started, reason="not the lease holder")
        return self._issue(
            target, workspace, scope[workspace.directory_id], desired, context, started
        )

    def _issue(
        self,
        target: EnrollmentTarget,
        workspace: LiveWorkspace,
        enrollment: Manifest,
        desired: DesiredState | None,
        context: dict[str, Any],
        started: float,
    ) -> Answer:
        tag_syncs = desired.of_kind("TagSync") if desired is not None else []
        try:
            workspace = replace(workspace, tags=target.directory.tags_of(workspace))
            issued, how = target.issuer.issue(workspace, enrollment, tag_syncs)
        except EnrollmentError as error:
            return self._decide("error", context, started, reason=str(error))
        except Exception as error:
            return self._failed(error, context, started)
        if how == "issued":
            target.wake()
        payload = {
            "activationId": issued.activation_id,
            "activationCode": issued.code,
            "region": issued.region,
            "expiresAt": issued.expires_at.isoformat(timespec="seconds"),
            "workspaceId": issued.workspace_id,
            "instanceName": issued.instance_name,
        }
        return self._decide(
            how,
            context,
            started,
            body=json.dumps(payload).encode(),
            activation_id=issued.activation_id,
            expires_at=payload["expiresAt"],
            enrollment=enrollment.ref,
        )

    def _known_workspace(self, address: str) -> bool:
        return any(target.directory.known(address) for target in self.targets.values())

    # -- answering -----------------------------------------------------------------------------------

    def _failed(self, error: Exception, context: dict[str, Any], started: float) -> Answer:
        return self._decide(
            "unavailable",
            context,
            started,
            reason="AWS call failed",
            error=redact_text(f"{type(error).__name__}: {error}"),
        )

    def _rate_limited(
        self, result: str, retry_after: float, context: dict[str, Any], started: float
    ) -> Answer:
        now = time.monotonic()
        # One address flooding is logged per address; everyone together hitting the overall
        # limit (a boot storm) or the in-flight bound is one line for all.
        key = f"{result}:{context['source'] if result == 'rate_limited_source' else '*'}"
        with self._limited_lock:
            last, refused = self._limited.get(key, (float("-inf"), 0))
            speak = now - last >= RATE_LIMIT_LOG_EVERY
            self._limited[key] = (now, 0) if speak else (last, refused + 1)
            if len(self._limited) > self.admission.settings.max_sources:
                self._limited.clear()
        return self._decide(
            result, context, started, retry_after=retry_after, quiet=not speak, suppressed=refused
        )

    def _decide(
        self,
        result: str,
        context: dict[str, Any],
        started: float,
        body: bytes | None = None,
        retry_after: float | None = None,
        quiet: bool = False,
        **details: Any,
    ) -> Answer:
        status = protocol.RESULT_STATUS[result]
        self.metrics.enrollment_requests_total.labels(result=result).inc()
        if not quiet:
            event = log.info if status == 200 else log.error if status == 500 else log.warning
            event(
                "enrollment",
                detail=status == 200,  # one line per WorkSpace: the pass lines tell the outcome
                result=result,
                status=status,
                seconds=round(time.monotonic() - started, 4),
                **context,
                **details,
            )
        headers = {"Content-Type": protocol.CONTENT_TYPE, "Cache-Control": "no-store"}
        if retry_after is None and status == 503:
            retry_after = RETRY_AFTER_UNAVAILABLE
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, round(retry_after + 0.5)))
        if body is None:
            word = protocol.ANSWER_WORD.get(status, protocol.ANSWER_WORD_DEFAULT)
            body = json.dumps({"result": word}).encode()
        return Answer(status, result, body, headers)


def _claimed_name(body: bytes) -> str | None:
    """The computer name in an exact ``{"computerName": "..."}`` body, or None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != set(protocol.REQUEST_FIELDS):
        return None
    name = data["computerName"]
    if not isinstance(name, str) or not protocol.COMPUTER_NAME.fullmatch(name):
        return None
    return name
