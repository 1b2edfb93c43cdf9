"""Typed configuration: what the commands are built from, once the command line is read.

The CLI turns its arguments into these (and nothing else reads an argparse Namespace), so the
one-shot commands and ``run`` build their Reconcilers the same way, in one place
(``ControllerConfig.reconciler``), and a test or an embedding builds a service without a
command line.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from pathlib import Path

from controller.aws import AwsApi, AwsSettings
from controller.engine.prune import PruneSettings
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.observability.metrics import DEFAULT_TARGET, Metrics


class SettingUnusable(ValueError):
    """A setting that cannot be used as given (a busy port): the CLI names its flag."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        super().__init__(f"{setting} {value}: {problem}")
        self.setting = setting
        self.value = value
        self.problem = problem


def port_problem(error: OSError, host: str, port: int) -> str:
    """Why binding ``host:port`` failed, in words that say what to do."""
    where = f"{host or '0.0.0.0'}:{port}"
    if error.errno == errno.EADDRINUSE:
        return f"{where} is already in use (another fleet-controller?); choose another port"
    if error.errno == errno.EACCES:
        return f"{where} needs privileges to bind; choose a port above 1023"
    if error.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME):
        return f"{host} is not an address of this machine"
    return f"cannot listen on {where}: {error.strerror or error}"


def check_port(setting: str, host: str, port: int) -> None:
    """Fail now, naming ``setting``, when ``host:port`` cannot be listened on (port 0: any)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
            probe.bind(address)
    except socket.gaierror:
        raise SettingUnusable(setting, port, f"{host} is not an address of this machine") from None
    except OSError as error:
        raise SettingUnusable(setting, port, port_problem(error, host, port)) from None


@dataclass
class LoopSettings:
    """How ``run`` paces one target's passes."""

    interval_seconds: float = 300.0
    jitter_fraction: float = 0.1  # each wait is interval * (1 ± jitter)
    enforce: bool = True
    max_iterations: int | None = None  # for tests and one-shot runs
    min_requeue_seconds: float = 10.0  # a requeue wish never makes passes closer than this
    # After a pass that changed something, or while ``pending`` says work is on its way (a
    # WorkSpace was just handed an activation), the next pass comes this soon instead of after
    # the interval; the delay doubles while that repeats and never exceeds the interval.
    requeue_seconds: float | None = None
    # With events, most passes diff against the live cache (events keep it fresh) and only one
    # every this many seconds reads the whole fleet again (None: every pass reads it).
    relist_interval_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """``--sandbox``: start the embedded sandbox with a simulated fleet."""

    workspaces: int = 50
    scenario: Path | None = None
    log_level: str = "warning"  # the sandbox's own chatter (a WorkSpace registered, ...)


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """What every command that talks to AWS needs."""

    controller_id: str = "fleet-controller"
    aws: AwsSettings = field(default_factory=AwsSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    apply_concurrency: int = 4
    sandbox: SandboxConfig | None = None

    def reconciler(self, aws: AwsApi, metrics: Metrics, target: str = DEFAULT_TARGET) -> Reconciler:
        """The one place a Reconciler is built for a command."""
        settings = ReconcileSettings(
            controller_id=self.controller_id,
            target=target,
            prune=self.prune,
            apply_concurrency=self.apply_concurrency,
        )
        return Reconciler(aws, settings, metrics)


@dataclass(frozen=True, kw_only=True)
class GitConfig:
    url: str
    ref: str = "main"
    path: str = "."
    workdir: Path | None = None
    timeout_seconds: float = 120.0


@dataclass(frozen=True, kw_only=True)
class LeaseConfig:
    table: str
    duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    replica_id: str | None = None  # default: hostname and a random suffix


@dataclass(frozen=True, kw_only=True)
class EnrollmentConfig:
    """The enrollment endpoint (``--enroll-*``): off unless a port is given (or, with
    ``--sandbox``, when the desired state declares an Enrollment)."""

    port: int | None = None
    host: str = "0.0.0.0"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[str, ...] = ()
    rate_per_source: float = 0.1
    burst_per_source: float = 5.0
    rate_total: float = 20.0
    burst_total: float = 100.0


@dataclass(frozen=True, kw_only=True)
class EventsConfig:
    """``--events-queue-url``: the SQS queue EventBridge delivers the default target's events
    to (a targets file names one per target, ``eventsQueueUrl``)."""

    queue_url: str | None = None
    relist_interval_seconds: float = 1800.0
    batch_seconds: float = 1.0


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """Everything ``run`` starts: a source, one loop per target, metrics, webhook, leases."""

    controller: ControllerConfig
    loop: LoopSettings = field(default_factory=LoopSettings)
    directory: Path | None = None
    git: GitConfig | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9100
    webhook_secret_file: Path | None = None
    webhook_max_bytes: int = 1024 * 1024
    targets_file: Path | None = None
    leases: LeaseConfig | None = None
    enrollment: EnrollmentConfig = field(default_factory=EnrollmentConfig)
    events: EventsConfig = field(default_factory=EventsConfig)


__all__ = [
    "ControllerConfig",
    "EnrollmentConfig",
    "EventsConfig",
    "GitConfig",
    "LeaseConfig",
    "LoopSettings",
    "SandboxConfig",
    "ServiceConfig",
    "SettingUnusable",
    "check_port",
    "port_problem",
]
