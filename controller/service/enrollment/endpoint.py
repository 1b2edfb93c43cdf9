"""Starting the endpoint for ``run``: its settings, the service behind it, and a first read.

``run`` builds one ``EnrollmentTarget`` per target it reconciles (its AwsApi, lease and loop) and
hands them here; the listener starts at once, and the in-scope WorkSpaces are read in the
background so the first WorkSpace to ask does not wait for the whole directory listing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from controller.manifests import DesiredState
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text
from controller.service.enrollment.addresses import parse_networks
from controller.service.enrollment.admission import Admission, AdmissionSettings
from controller.service.enrollment.server import EnrollmentServer, tls_context
from controller.service.enrollment.service import EnrollmentService, EnrollmentTarget

log = structlog.get_logger("fleet_controller.service.enrollment")


@dataclass(frozen=True)
class EndpointSettings:
    host: str = "0.0.0.0"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[str, ...] = ()
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--enroll-tls-cert and --enroll-tls-key go together")


def start_endpoint(
    settings: EndpointSettings,
    desired: Callable[[], DesiredState | None],
    targets: Sequence[EnrollmentTarget],
    metrics: Metrics,
) -> tuple[EnrollmentService, EnrollmentServer]:
    service = EnrollmentService(
        desired,
        targets,
        metrics,
        Admission(settings.admission),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
    tls = (
        tls_context(settings.tls_cert, settings.tls_key)
        if settings.tls_cert is not None and settings.tls_key is not None
        else None
    )
    server = EnrollmentServer(service, settings.host, settings.port, tls).start()
    threading.Thread(
        target=_first_read, args=(desired, targets), name="enrollment-first-read", daemon=True
    ).start()
    return service, server


def _first_read(
    desired: Callable[[], DesiredState | None], targets: Sequence[EnrollmentTarget]
) -> None:
    state = desired()
    if state is None:
        return
    scope = {d for m in state.of_kind("Enrollment") for d in m.spec.workspaces.directory_ids}
    if not scope:
        return
    for target in targets:
        try:
            target.directory.refresh(scope)
        except Exception as error:  # the first ask will try again
            log.warning(
                "enrollment directory not readable yet",
                target=target.name,
                error=redact_text(f"{type(error).__name__}: {error}"),
            )
