"""``run`` as a service: one desired-state poller, one reconcile loop per target, optional leases.

Threads, and why each exists:

* the poller fetches the source every interval (or at once on a webhook) and wakes every target's
  loop when a new revision validated, so a push reaches the fleet within one interval;
* one ``ReconcileLoop`` per target, so a slow or failing account never delays the others;
* the lease keeper (with ``--lease-table``), which decides which targets this replica may write to;
* one event worker per target with an events queue, so a change is reconciled in seconds while a
  relist of a large fleet runs (the two never write at once: the Reconciler's write lock).

Stopping (SIGTERM) lets each loop finish the operation in flight, then releases the leases so
another replica takes over at once instead of after a lease duration.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from botocore.exceptions import ClientError

from controller.arguments import REPLICA_ID
from controller.aws import AwsSettings, CallRecorder
from controller.aws.targets import Target, build_target, count_calls, default_target, load_targets
from controller.config import (
    LoopSettings,
    ServiceConfig,
    SettingUnusable,
    check_port,
    port_problem,
)
from controller.manifests import DesiredState
from controller.observability.http import ObservabilityServer
from controller.observability.metrics import DEFAULT_TARGET, Metrics
from controller.observability.redaction import redact_text
from controller.observability.report import seconds_text
from controller.service.enrollment.admission import AdmissionSettings
from controller.service.enrollment.directory import WorkspaceDirectory
from controller.service.enrollment.endpoint import EndpointSettings, start_endpoint
from controller.service.enrollment.issuer import ActivationIssuer
from controller.service.enrollment.service import EnrollmentService, EnrollmentTarget
from controller.service.events import EventQueue, EventSettings, EventWorker
from controller.service.ha.keeper import LeaseKeeper, LeaseSettings, lease_api
from controller.service.ha.table import LeaseTable, missing_table
from controller.service.loop import DesiredStateTracker, ReconcileLoop, Refresh
from controller.service.source import DesiredStateSource, DirectorySource, GitSource, Revision
from controller.service.webhook import Webhook, load_secret

log = structlog.get_logger("fleet_controller.service.runtime")

LEASE_TABLE_LABEL = "_leases"
"""The ``target`` label of the lease table's own AWS calls (target names cannot start with '_')."""


class Runtime:
    def __init__(
        self,
        tracker: DesiredStateTracker,
        loops: Mapping[str, ReconcileLoop],
        settings: LoopSettings,
        keeper: LeaseKeeper | None = None,
        workers: Sequence[EventWorker] = (),
    ) -> None:
        self.tracker = tracker
        self.loops = dict(loops)
        self.settings = settings
        self.keeper = keeper
        self.workers = list(workers)
        self.stop = threading.Event()
        self._source_wake = threading.Event()
        self._keeper_stop = threading.Event()
        self._forced = threading.Event()  # a webhook asked for a reconcile, new revision or not
        self._random = random.Random()

    # -- triggers ----------------------------------------------------------------------------------

    def trigger(self) -> None:
        """Fetch and reconcile now (the webhook). Calls during one fetch coalesce into one."""
        self._forced.set()
        self._source_wake.set()

    def wake_target(self, target: str) -> None:
        loop = self.loops.get(target)
        if loop is not None:
            loop.wake.set()

    def request_stop(self) -> None:
        self.stop.set()
        self._source_wake.set()
        for loop in self.loops.values():
            loop.request_stop()
        for worker in self.workers:
            worker.stop.set()

    @property
    def ready(self) -> bool:
        """A valid revision is known and every target this replica holds has been reconciled."""
        return self.tracker.current() is not None and all(
            loop.ready for loop in self.loops.values()
        )

    # -- running -----------------------------------------------------------------------------------

    def run(self) -> None:
        """Until a stop request, or until every loop ran ``max_iterations`` passes."""
        keeper_thread = None
        if self.keeper is not None:
            keeper_thread = threading.Thread(
                target=self.keeper.run, args=(self._keeper_stop,), name="leases", daemon=True
            )
            keeper_thread.start()
        poller = threading.Thread(target=self._poll, name="desired-state", daemon=True)
        poller.start()
        workers = [
            threading.Thread(
                target=self._run_loop, args=(loop,), name=f"target-{name}", daemon=True
            )
            for name, loop in self.loops.items()
        ]
        listeners = [
            threading.Thread(target=w.run, name=f"events-{w.target}", daemon=True)
            for w in self.workers
        ]
        for worker in [*workers, *listeners]:
            worker.start()
        try:
            while not self.stop.is_set() and any(w.is_alive() for w in workers):
                self.stop.wait(0.5)
        finally:
            self.request_stop()
            for worker in [*workers, *listeners]:
                worker.join()
            poller.join(timeout=30)
            self._keeper_stop.set()
            if keeper_thread is not None:
                keeper_thread.join(timeout=30)
            if self.keeper is not None:
                self.keeper.stop(release=True)  # no operation is in flight any more

    def _run_loop(self, loop: ReconcileLoop) -> None:
        try:
            loop.run()
        except Exception as error:  # a bug in one target's loop must not end the others
            log.exception("reconcile loop crashed", target=loop.target, error=str(error))

    def _poll(self) -> None:
        while not self.stop.is_set():
            jitter = self.settings.jitter_fraction
            seconds = self.settings.interval_seconds * (1 + self._random.uniform(-jitter, jitter))
            self._source_wake.wait(timeout=max(0.0, seconds))
            self._source_wake.clear()
            if self.stop.is_set():
                return
            forced = self._forced.is_set()
            self._forced.clear()
            outcome = self.tracker.refresh()
            if outcome is Refresh.NEW or forced:
                for loop in self.loops.values():
                    loop.wake.set()


class Service:
    """Everything ``run`` starts, built from its configuration; closing it tears it all down."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.server: ObservabilityServer | None = None
        self.metrics: Metrics | None = None
        self.enrollment: EnrollmentService | None = None
        self.enrollment_url: str | None = None
        self._embedded: Any = None
        self._cleanup: list[Callable[[], None]] = []
        self._stop_requested = False

    @classmethod
    def build(cls, config: ServiceConfig) -> Service:
        service = cls()
        try:
            service._build(config)
        except BaseException:
            service.close()
            raise
        return service

    def run(self) -> None:
        assert self.runtime is not None
        self.runtime.run()

    def request_stop(self) -> None:
        self._stop_requested = True
        if self.runtime is not None:
            self.runtime.request_stop()

    def unfinished(self) -> str | None:
        """After a run bounded by ``--iterations``: why it reconciled nothing, or None.

        A bounded run is a job (a CI step, a cron job): one that never read a valid desired
        state (an unreachable git URL) or whose every pass of a target failed must not exit 0.
        A stop request (SIGTERM) ends a run cleanly whatever it had done.
        """
        runtime = self.runtime
        if runtime is None or runtime.settings.max_iterations is None or self._stop_requested:
            return None
        if runtime.tracker.current() is None:
            return (
                f"no valid desired state was read from {runtime.tracker.source.description}:"
                " nothing was reconciled"
            )
        failed = sorted(
            name
            for name, loop in runtime.loops.items()
            if loop.completed == 0 and loop.guard is None
        )
        if failed:
            return f"every pass failed for target(s) {', '.join(failed)}: see the log"
        return None

    def close(self) -> None:
        while self._cleanup:
            step = self._cleanup.pop()
            try:
                step()
            except Exception as error:
                log.warning("shutdown step failed", error=redact_text(str(error)))

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wiring ------------------------------------------------------------------------------------

    def _build(self, config: ServiceConfig) -> None:
        controller = config.controller
        specs = load_targets(config.targets_file) if config.targets_file else None
        names = [spec.name for spec in specs] if specs else [DEFAULT_TARGET]
        metrics = Metrics(
            controller_id=controller.controller_id, targets=names, process_metrics=True
        )
        self.metrics = metrics
        # The ports first: a busy one ends the command at once, naming its setting, before a
        # repository is cloned or the sandbox starts.
        server = self._bind_metrics(config, metrics)
        if config.enrollment.port is not None:
            check_port("enroll_port", config.enrollment.host, config.enrollment.port)
        source = self._source(config)
        self._cleanup.append(source.close)
        if isinstance(source, DirectorySource):
            source.fetch()  # a broken directory at start is an error to fix, not to wait out
        tracker = DesiredStateTracker(source, metrics)
        tracker.refresh()
        base = controller.aws
        if controller.sandbox is not None:
            self._start_sandbox(config, base, tracker.current())
        targets = (
            [build_target(spec, base, metrics) for spec in specs]
            if specs
            else [default_target(base, metrics)]
        )
        keeper = self._keeper(config, base, names, metrics) if config.leases else None
        if keeper is None:  # one replica owns every target: today's behaviour
            for name in names:
                metrics.set_leader(name, True)
        queues = {target.name: _events_queue(config, target) for target in targets}
        loops = {
            target.name: ReconcileLoop(
                tracker.current,
                controller.reconciler(target.aws, metrics, target.name),
                metrics,
                (
                    dataclasses.replace(
                        config.loop,
                        relist_interval_seconds=config.events.relist_interval_seconds,
                    )
                    if queues[target.name]
                    else config.loop
                ),
                guard=keeper.guard(target.name) if keeper else None,
                pending=functools.partial(self._enrollment_pending, target.name),
            )
            for target in targets
        }
        workers = [
            EventWorker(
                EventQueue(target.aws, url),
                loops[target.name].reconciler,
                tracker.current,
                metrics,
                EventSettings(batch_seconds=config.events.batch_seconds),
                enforce=config.loop.enforce,
                guard=loops[target.name].guard,
            )
            for target in targets
            if (url := queues[target.name])
        ]
        runtime = Runtime(tracker, loops, config.loop, keeper, workers)
        self.runtime = runtime
        secret = load_secret(config.webhook_secret_file)
        if secret is not None:
            Webhook(
                secret,
                runtime.trigger,
                metrics,
                ref=config.git.ref if config.git else None,
                max_body_bytes=config.webhook_max_bytes,
            ).mount(server)
        server.start()
        self._start_enrollment(config, targets, loops, metrics, tracker)
        log.info(
            "serving",
            summary=_serving_summary(config, server, self.enrollment_url, self._embedded),
            metrics=f"{server.url}/metrics",
            metrics_bound=f"{server.host}:{server.port}",
            enrollment=self.enrollment_url,
            webhook=f"{server.url}/webhook" if secret is not None else None,
            mode="enforce" if config.loop.enforce else "observe",
            source=source.description,
            targets=names,
            leases=config.leases.table if config.leases else None,
            events={name: url for name, url in queues.items() if url},
            replica=keeper.replica_id if keeper else None,
        )

    def _bind_metrics(self, config: ServiceConfig, metrics: Metrics) -> ObservabilityServer:
        """The /metrics, /healthz, /readyz listener, bound now (started once the loops exist)."""
        try:
            server = ObservabilityServer(
                metrics,
                ready=lambda: self.runtime is not None and self.runtime.ready,
                host=config.metrics_host,
                port=config.metrics_port,
            )
        except OSError as error:
            problem = port_problem(error, config.metrics_host, config.metrics_port)
            raise SettingUnusable("metrics_port", config.metrics_port, problem) from None
        self.server = server
        self._cleanup.append(server.stop)
        return server

    def _start_enrollment(
        self,
        config: ServiceConfig,
        targets: list[Target],
        loops: Mapping[str, ReconcileLoop],
        metrics: Metrics,
        tracker: DesiredStateTracker,
    ) -> None:
        """The enrollment listener, when asked for; with --sandbox also whenever the desired
        state declares an Enrollment (on a free loopback port), and the fleet is pointed at it."""
        enroll = config.enrollment
        sandbox_enrolls = self._embedded is not None and _sandbox_enrolls(config, tracker.current())
        port, host = enroll.port, enroll.host
        if port is None:
            if not sandbox_enrolls:
                return
            port, host = 0, "127.0.0.1"
        settings = EndpointSettings(
            host=host,
            port=port,
            tls_cert=enroll.tls_cert,
            tls_key=enroll.tls_key,
            trusted_proxies=enroll.trusted_proxies,
            admission=AdmissionSettings(
                per_source_rate=enroll.rate_per_source,
                per_source_burst=enroll.burst_per_source,
                total_rate=enroll.rate_total,
                total_burst=enroll.burst_total,
            ),
        )
        enrolling = [
            EnrollmentTarget(
                target.name,
                WorkspaceDirectory(target.aws),
                ActivationIssuer(target.aws, config.controller.controller_id),
                may_write=loops[target.name].may_write,
                wake=loops[target.name].wake.set,
            )
            for target in targets
        ]

        def desired() -> DesiredState | None:
            revision = tracker.current()
            return revision.desired if revision is not None else None

        self.enrollment, server = start_endpoint(settings, desired, enrolling, metrics)
        self._cleanup.append(server.stop)
        self.enrollment_url = server.url
        if sandbox_enrolls:
            self._embedded.enroll_at(server.url)

    def _enrollment_pending(self, target: str) -> bool:
        return self.enrollment is not None and self.enrollment.pending(target)

    def _source(self, config: ServiceConfig) -> DesiredStateSource:
        if config.git is not None and config.directory is not None:
            raise ValueError("give either a desired-state directory or --git-url, not both")
        if config.git is not None:
            return GitSource(
                config.git.url,
                ref=config.git.ref,
                path=config.git.path,
                workdir=config.git.workdir,
                timeout_seconds=config.git.timeout_seconds,
            )
        if config.directory is None:
            raise ValueError("run needs a desired-state directory or --git-url")
        return DirectorySource(config.directory)

    def _start_sandbox(
        self, config: ServiceConfig, base: AwsSettings, first: Revision | None
    ) -> None:
        from controller.embedded import start_embedded

        sandbox = config.controller.sandbox
        assert sandbox is not None
        embedded = start_embedded(
            base,
            first.desired if first else None,
            sandbox.workspaces,
            sandbox.scenario,
            enrolls=_sandbox_enrolls(config, first),
            log_level=sandbox.log_level,
        )
        self._cleanup.append(embedded.stop)
        self._embedded = embedded

    def _keeper(
        self, config: ServiceConfig, base: AwsSettings, names: list[str], metrics: Metrics
    ) -> LeaseKeeper:
        leases = config.leases
        assert leases is not None
        settings = LeaseSettings(
            duration_seconds=leases.duration_seconds,
            renew_deadline_seconds=leases.renew_deadline_seconds,
            retry_period_seconds=leases.retry_period_seconds,
        )
        recorder = CallRecorder()
        count_calls(recorder, metrics, LEASE_TABLE_LABEL)
        replica_id = leases.replica_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        if not REPLICA_ID.fullmatch(replica_id):
            raise ValueError(f"--replica-id must match {REPLICA_ID.pattern}: {replica_id!r}")
        table = LeaseTable(lease_api(base, settings, recorder), leases.table)
        _check_table(table)
        return LeaseKeeper(
            table,
            replica_id,
            names,
            settings,
            metrics,
            on_acquired=self._wake,
            on_lost=self._wake,
        )

    def _wake(self, target: str) -> None:
        if self.runtime is not None:
            self.runtime.wake_target(target)


def _serving_summary(
    config: ServiceConfig,
    server: ObservabilityServer,
    enrollment_url: str | None,
    embedded: Any,
) -> str:
    """The start-up line: where to look, and when passes come."""
    loop = config.loop
    bound = f"{server.host}:{server.port}"
    where = "every interface" if server.host in ("0.0.0.0", "::", "") else "this address only"
    parts = [f"metrics at {server.url}/metrics (listening on {bound}, {where})"]
    if enrollment_url:
        parts.append(f"enrollment at {enrollment_url}")
    if embedded is not None:
        parts.append(
            f"sandbox: {embedded.workspaces} simulated WorkSpaces behind {embedded.endpoint}"
        )
    mode = "enforcing" if loop.enforce else "observing only (nothing is written)"
    cadence = f"every {seconds_text(loop.interval_seconds)}"
    if loop.jitter_fraction:
        cadence += f" (±{loop.jitter_fraction:.0%})"
    if loop.requeue_seconds is not None:
        cadence += f", {seconds_text(loop.requeue_seconds)} after a pass that changed something"
    return "; ".join(parts) + f". {mode.capitalize()}: first pass now, then {cadence}."


def _events_queue(config: ServiceConfig, target: Target) -> str | None:
    """The target's events queue: its own (targets file), else --events-queue-url for the
    default target."""
    if target.spec is not None:
        return target.spec.events_queue_url
    return config.events.queue_url


def _sandbox_enrolls(config: ServiceConfig, first: Revision | None) -> bool:
    """With --sandbox, the simulated WorkSpaces enroll at the endpoint when the desired state
    declares an Enrollment (or the endpoint was asked for); otherwise they read the parameter."""
    declared = first is not None and bool(first.desired.of_kind("Enrollment"))
    asked = config.enrollment.port is not None
    return config.controller.sandbox is not None and (declared or asked)


def _check_table(table: LeaseTable) -> None:
    """A missing lease table is a deployment error: say so at start instead of never leading."""
    try:
        table.scan()
    except ClientError as error:
        missing = missing_table(table, error)
        if missing is not None:
            raise ValueError(missing) from None
        log.warning("lease table not readable yet", error=redact_text(str(error)))
    except Exception as error:  # the network: the keeper keeps trying
        log.warning("lease table not readable yet", error=redact_text(str(error)))
