"""``fleet-controller``: validate | plan | apply | run | export | sandbox.

Exit codes follow CI conventions: 0 success, 1 error (invalid desired state, AWS failure, a
refusal, a blocked or failed operation), and with ``plan --detailed-exitcode`` 2 when there are
changes and nothing was refused. A refusal is never a quiet "no changes".
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import structlog
import yaml

from controller import arguments as valid
from controller.aws import AwsSettings, CallRecorder
from controller.aws.targets import default_target
from controller.config import (
    ControllerConfig,
    EnrollmentConfig,
    EventsConfig,
    GitConfig,
    LeaseConfig,
    LoopSettings,
    SandboxConfig,
    ServiceConfig,
    SettingUnusable,
    check_port,
)
from controller.contract import PLACEHOLDER, Plan
from controller.contract.registry import registered
from controller.engine.prune import PruneSettings
from controller.engine.reconcile import Reconciler
from controller.engine.render import render_json, render_markdown, render_text
from controller.manifests import DesiredState, InvalidDesiredState, load_desired_state
from controller.observability.logging import configure_logging
from controller.observability.metrics import DEFAULT_TARGET, Metrics
from controller.observability.progress import apply_progress
from controller.observability.redaction import redact_text
from controller.service.ha.exclusive import ExclusiveLease, LeaseUnavailable
from controller.service.ha.guard import WriteGate
from controller.service.ha.keeper import LeaseSettings, lease_api
from controller.service.ha.table import LeaseTable

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

log = structlog.get_logger("fleet_controller.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = valid.OneLineParser(
        prog="fleet-controller",
        description="Keep an Amazon WorkSpaces fleet managed by SSM in the state declared in git.",
        formatter_class=valid.DefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, parents: list[valid.OneLineParser], text: str) -> Any:
        return commands.add_parser(
            name, parents=parents, help=text, formatter_class=valid.DefaultsHelpFormatter
        )

    common = valid.OneLineParser(add_help=False)
    common.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="auto: sentences on a terminal, JSON lines otherwise",
    )
    common.add_argument(
        "--log-level",
        type=valid.log_level,
        default=os.environ.get("FLEET_LOG_LEVEL", "info"),
        metavar="LEVEL",
        help="debug also shows every operation and enrollment on a terminal (env FLEET_LOG_LEVEL)",
    )

    aws = valid.OneLineParser(add_help=False)
    aws.add_argument(
        "--controller-id",
        type=valid.controller_id,
        default=os.environ.get("FLEET_CONTROLLER_ID", "fleet-controller"),
        metavar="ID",
        help="value of the fleet-controller/owner tag on everything this controller creates"
        " (env FLEET_CONTROLLER_ID)",
    )
    aws.add_argument(
        "--region",
        type=valid.region,
        # boto3 reads only AWS_DEFAULT_REGION; AWS_REGION is what the AWS CLI v2, ECS and the
        # deployments in deploy/ set, and it comes first there too.
        default=os.environ.get("AWS_REGION") or None,
        help="AWS region (default: env AWS_REGION, else boto3's configuration:"
        " AWS_DEFAULT_REGION or the profile's)",
    )
    aws.add_argument("--profile", help="AWS profile (default: boto3's configuration)")
    aws.add_argument(
        "--endpoint-url",
        type=valid.endpoint_url,
        help="AWS endpoint (default: boto3's, e.g. AWS_ENDPOINT_URL)",
    )
    aws.add_argument(
        "--sandbox",
        action="store_true",
        help="start the embedded sandbox with a simulated fleet and run against it",
    )
    aws.add_argument(
        "--sandbox-workspaces",
        type=valid.int_range(0, valid.MAX_SANDBOX_WORKSPACES),
        default=50,
        metavar="N",
        help="simulated WorkSpaces in the embedded sandbox",
    )
    aws.add_argument(
        "--sandbox-scenario",
        type=Path,
        metavar="FILE",
        help="YAML scenario for the embedded sandbox instead of the demo fleet",
    )
    aws.add_argument(
        "--sandbox-log-level",
        type=valid.log_level,
        default="warning",
        metavar="LEVEL",
        help="the embedded sandbox's own messages (info: each simulated WorkSpace registering)",
    )

    pruning = valid.OneLineParser(add_help=False)
    pruning.add_argument(
        "--prune", action="store_true", help="delete owned resources no manifest declares"
    )
    pruning.add_argument(
        "--max-deletes",
        type=valid.int_range(0),
        default=5,
        metavar="N",
        help="with --prune: refuse a kind's deletions beyond this many",
    )
    pruning.add_argument(
        "--apply-concurrency",
        type=valid.int_range(1, valid.MAX_APPLY_CONCURRENCY),
        default=4,
        metavar="N",
        help="operations applied at once within a phase (rate limits still apply)",
    )

    validate = command("validate", [common], "check desired state offline")
    validate.add_argument("directory", type=Path, help="desired-state directory")

    plan = command("plan", [common, aws, pruning], "show what would change")
    plan.add_argument("directory", type=Path, help="desired-state directory")
    plan.add_argument(
        "--format",
        choices=["text", "markdown", "json"],
        default="text",
        help="markdown for a pull-request comment",
    )
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing changes, 2 when something would, 1 on error",
    )

    leases = _lease_options()
    apply = command("apply", [common, aws, pruning, leases], "plan, then apply")
    apply.add_argument("directory", type=Path, help="desired-state directory")
    apply.add_argument(
        "--format",
        choices=["text", "markdown", "json"],
        default="text",
        help="how the plan is printed before it is applied",
    )
    apply.add_argument(
        "--lease-target",
        type=valid.target_name,
        default=DEFAULT_TARGET,
        metavar="NAME",
        help="with --lease-table: the run target this apply writes to",
    )

    run = command("run", [common, aws, pruning, leases], "reconcile in a loop")
    _add_run_options(run)

    export = command("export", [common, aws], "live state as desired-state YAML")
    export.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="a .yaml file, or a directory (fleet.yaml in it); each package's files are written"
        " beside it under packages/ (default: the manifests on stdout, without package files)",
    )

    sandbox = command("sandbox", [common], "run the local AWS sandbox")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument(
        "--port", type=valid.int_range(0, 65535), default=4566, help="port to listen on"
    )
    sandbox.add_argument(
        "--workspaces",
        type=valid.int_range(0, valid.MAX_SANDBOX_WORKSPACES),
        default=50,
        metavar="N",
        help="simulated WorkSpaces",
    )
    sandbox.add_argument(
        "--scenario", type=Path, metavar="FILE", help="YAML scenario instead of the demo fleet"
    )
    return parser


def _add_run_options(run: argparse.ArgumentParser) -> None:
    env = os.environ.get
    run.add_argument(
        "directory", type=Path, nargs="?", help="desired-state directory (or follow --git-url)"
    )
    run.add_argument(
        "--interval",
        type=valid.seconds(0),
        default=300.0,
        metavar="SECONDS",
        help="a full pass at least this often",
    )
    run.add_argument(
        "--jitter",
        type=valid.fraction,
        default=0.1,
        metavar="FRACTION",
        help="each wait is the interval ± this fraction, so replicas and targets spread out",
    )
    run.add_argument(
        "--mode",
        choices=["enforce", "observe"],
        default="enforce",
        help="observe: plan and report, never write",
    )
    run.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="address /metrics, /healthz, /readyz listen on",
    )
    run.add_argument(
        "--metrics-port",
        type=valid.int_range(0, 65535),
        default=9100,
        metavar="PORT",
        help="0: any free port",
    )
    run.add_argument(
        "--iterations",
        type=valid.int_range(1),
        metavar="N",
        help="stop after N passes per target (default: never); exit 1 if any pass failed",
    )
    git = run.add_argument_group("git source")
    git.add_argument(
        "--git-url",
        default=env("FLEET_GIT_URL"),
        help="follow this repository (https, ssh or file URL; GIT_SSH_COMMAND is honoured;"
        " env FLEET_GIT_URL)",
    )
    git.add_argument(
        "--git-ref", default=env("FLEET_GIT_REF", "main"), help="branch or tag (env FLEET_GIT_REF)"
    )
    git.add_argument(
        "--git-path",
        default=env("FLEET_GIT_PATH", "."),
        help="desired-state directory inside the repository (env FLEET_GIT_PATH)",
    )
    git.add_argument(
        "--git-dir", type=Path, help="where to keep the clone (default: a temporary directory)"
    )
    git.add_argument(
        "--git-timeout",
        type=valid.seconds(0),
        default=120.0,
        metavar="SECONDS",
        help="a fetch taking longer is abandoned",
    )
    hook = run.add_argument_group("webhook (POST /webhook; secret from FLEET_WEBHOOK_SECRET)")
    hook.add_argument(
        "--webhook-secret-file", type=Path, metavar="FILE", help="the push webhook's secret"
    )
    hook.add_argument(
        "--webhook-max-bytes",
        type=valid.int_range(1, 64 * 1024 * 1024),
        default=1024 * 1024,
        metavar="BYTES",
        help="larger deliveries are refused (413)",
    )
    enroll = run.add_argument_group(
        "enrollment endpoint (off unless --enroll-port; POST /v1/enroll on its own listener)"
    )
    enroll.add_argument(
        "--enroll-port",
        type=valid.int_range(0, 65535),
        default=env("FLEET_ENROLL_PORT"),  # argparse converts a string default with type
        metavar="PORT",
        help="serve WorkSpace enrollment on this port (with --sandbox and an Enrollment manifest,"
        " a free loopback port is used when this is not given; env FLEET_ENROLL_PORT)",
    )
    enroll.add_argument(
        "--enroll-host", default="0.0.0.0", metavar="ADDRESS", help="address enrollment listens on"
    )
    enroll.add_argument("--enroll-tls-cert", type=Path, metavar="PEM", help="serve HTTPS itself")
    enroll.add_argument("--enroll-tls-key", type=Path, metavar="PEM", help="its private key")
    proxies = env("FLEET_ENROLL_TRUSTED_PROXIES")
    enroll.add_argument(
        "--enroll-trusted-proxy",
        action="append",
        type=valid.network,
        default=[p for p in (proxies or "").split(",") if p.strip()],
        metavar="CIDR",
        help="believe X-Forwarded-For only from these load balancer ranges (repeatable;"
        " env FLEET_ENROLL_TRUSTED_PROXIES, comma-separated)",
    )
    # A burst is how many asks pass at once: below one, none ever would.
    burst = valid.seconds(1, inclusive=True)
    enroll.add_argument(
        "--enroll-rate-per-source",
        type=valid.seconds(0),
        default=0.1,
        metavar="PER_SECOND",
        help="asks per second from one address",
    )
    enroll.add_argument(
        "--enroll-burst-per-source",
        type=burst,
        default=5.0,
        metavar="N",
        help="asks one address may make at once",
    )
    enroll.add_argument(
        "--enroll-rate-total",
        type=valid.seconds(0),
        default=20.0,
        metavar="PER_SECOND",
        help="asks per second from everyone",
    )
    enroll.add_argument(
        "--enroll-burst-total",
        type=burst,
        default=100.0,
        metavar="N",
        help="asks everyone may make at once",
    )
    run.add_argument(
        "--requeue-seconds",
        type=valid.seconds(0),
        default=5.0,
        metavar="SECONDS",
        help="after a pass that changed something, or while enrollments are pending, pass again"
        " this soon (doubling while it repeats, never beyond --interval)",
    )
    events = run.add_argument_group(
        "events (EventBridge -> SQS; deploy/events/fleet-events.yaml makes the queue and rules)"
    )
    events.add_argument(
        "--events-queue-url",
        type=valid.queue_url,
        default=env("FLEET_EVENTS_QUEUE_URL"),
        metavar="URL",
        help="react to the default target's events from this queue: a change is reconciled in"
        " seconds, reading only what the event names (targets: eventsQueueUrl per target;"
        " env FLEET_EVENTS_QUEUE_URL)",
    )
    events.add_argument(
        "--relist-interval",
        type=valid.seconds(0),
        default=1800.0,
        metavar="SECONDS",
        help="with events, read the whole fleet again this often; the passes in between diff"
        " against the live cache",
    )
    events.add_argument(
        "--events-batch-seconds",
        type=valid.seconds(0, inclusive=True, maximum=valid.MAX_EVENTS_BATCH_SECONDS),
        default=1.0,
        metavar="SECONDS",
        help="after an event arrives, gather the events that follow for this long and reconcile"
        " them in one targeted pass",
    )
    targets = run.add_argument_group("targets")
    targets_file = env("FLEET_TARGETS")
    targets.add_argument(
        "--targets",
        type=Path,
        default=Path(targets_file) if targets_file else None,
        metavar="FILE",
        help="YAML list of accounts/Regions to reconcile (default: one target, 'default';"
        " env FLEET_TARGETS)",
    )


def _lease_options() -> valid.OneLineParser:
    """Leases: shared by run (replicas share targets) and apply (one writer per target)."""
    env = os.environ.get
    parent = valid.OneLineParser(add_help=False)
    leases = parent.add_argument_group("leases (one writer per target)")
    leases.add_argument(
        "--lease-table",
        default=env("FLEET_LEASE_TABLE"),
        metavar="NAME",
        help="DynamoDB table (partition key 'target', a string) holding per-target leases"
        " (env FLEET_LEASE_TABLE)",
    )
    leases.add_argument(
        "--lease-duration",
        type=valid.seconds(0),
        default=15.0,
        metavar="SECONDS",
        help="a lease not renewed for this long may be taken over",
    )
    leases.add_argument(
        "--lease-renew-deadline",
        type=valid.seconds(0),
        default=10.0,
        metavar="SECONDS",
        help="a holder that could not renew for this long stops writing",
    )
    leases.add_argument(
        "--lease-retry-period",
        type=valid.seconds(0),
        default=2.0,
        metavar="SECONDS",
        help="how often leases are renewed or tried",
    )
    leases.add_argument(
        "--replica-id",
        type=valid.replica_id,
        default=env("FLEET_REPLICA_ID"),
        metavar="ID",
        help="this writer's name in the lease table (default: hostname and a random suffix;"
        " env FLEET_REPLICA_ID)",
    )
    return parent


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stopped:  # --help, or a bad argument (already said, in one line)
        return stopped.code if isinstance(stopped.code, int) else EXIT_ERROR
    configure_logging(args.log_format, args.log_level)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "validate": cmd_validate,
        "plan": cmd_plan,
        "apply": cmd_apply,
        "run": cmd_run,
        "export": cmd_export,
        "sandbox": cmd_sandbox,
    }
    if args.command == "run" and args.directory is None and not args.git_url:
        print(
            "fleet-controller run: error: run needs a desired-state directory or --git-url",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        return handlers[args.command](args)
    except InvalidDesiredState as invalid:
        _print_invalid(invalid)
        return EXIT_ERROR
    except SettingUnusable as unusable:  # a busy port: name the flag that chose it
        flag = _FLAGS.get(unusable.setting, unusable.setting)
        print(f"error: {flag} {unusable.value}: {unusable.problem}", file=sys.stderr)
        return EXIT_ERROR
    except _LeaseRefused as refused:
        print(f"error: {redact_text(str(refused))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as error:
        message = redact_text(f"{type(error).__name__}: {error}")
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR


_FLAGS = {"metrics_port": "--metrics-port", "enroll_port": "--enroll-port", "port": "--port"}
"""Settings that can turn out unusable only when used (a port someone else holds) -> their flag."""


def _print_invalid(invalid: InvalidDesiredState) -> None:
    count = len(invalid.errors)
    print(f"desired state is invalid ({count} error{'s' if count != 1 else ''}):", file=sys.stderr)
    for error in invalid.errors:
        print(f"  {error}", file=sys.stderr)


# -- commands ------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    desired = load_desired_state(args.directory, build=False)  # offline: checks, no zips
    counts = ", ".join(
        f"{len(desired.of_kind(k.kind))} {k.kind}" for k in registered() if desired.of_kind(k.kind)
    )
    print(f"{args.directory}: valid ({counts or 'no documents'})")
    placeholders = desired.placeholders
    if placeholders:
        print(
            f"{len(placeholders)} placeholder(s) left by export to fill in; plan and apply refuse"
            " the manifests that hold them until then:"
        )
        for placeholder in placeholders:
            print(f"  {placeholder}")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    desired = load_desired_state(args.directory)
    with controller_session(controller_config(args), desired) as (reconciler, _):
        plan = reconciler.plan(desired)
    sys.stdout.write(_render(plan, args.format, sys.stdout))
    if not plan.ok:
        return EXIT_ERROR
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    desired = load_desired_state(args.directory)
    with (
        controller_session(controller_config(args), desired) as (reconciler, _),
        _apply_lease(args) as lease,
    ):
        plan = reconciler.plan(desired)
        sys.stdout.write(_render(plan, args.format, sys.stdout))
        if not plan.has_changes:
            return EXIT_OK if plan.ok else EXIT_ERROR
        stop = threading.Event()
        gate = stop if lease is None else WriteGate(stop, lease)
        sys.stdout.flush()  # the plan stays above the progress display
        with (
            _stop_on_signals(stop.set),
            apply_progress(sys.stderr, len(plan.operations), _colour(sys.stderr)) as progress,
        ):
            result = reconciler.apply(plan, stop=gate, progress=progress)
    # Each failure, block and deferral was logged as it happened (above the display): the
    # summary counts them instead of saying them twice.
    print(
        f"Applied {len(result.applied)} of {len(plan.operations)} operation(s); "
        f"{len(result.failed)} failed, {len(result.blocked)} blocked, "
        f"{len(result.deferred)} deferred, {len(result.skipped)} not started.",
    )
    return EXIT_OK if plan.ok and result.ok and not result.skipped else EXIT_ERROR


def cmd_run(args: argparse.Namespace) -> int:
    from controller.service.runtime import Service

    with Service.build(service_config(args)) as service, _stop_on_signals(service.request_stop):
        service.run()
        unfinished = service.unfinished()
    log.info("stopped", summary="stopped")
    if unfinished:  # --iterations: a pass that reconciled nothing is a failure to report
        print(f"error: {unfinished}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with controller_session(controller_config(args), None) as (reconciler, _):
        ctx = reconciler.context()
        exported = {kind.kind: kind.export(reconciler.aws, ctx) for kind in registered()}
    documents = [d for part in exported.values() for d in part.documents]
    files = {path: content for part in exported.values() for path, content in part.files.items()}
    review = [note for part in exported.values() for note in part.review]
    text = redact_text(yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True))
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(text)
        if files:
            review.insert(0, f"{len(files)} package file(s) not written: use --output PATH")
        where = "stdout"
    else:
        manifests = output if output.suffix in (".yaml", ".yml") else output / "fleet.yaml"
        _write_export(manifests, text, files)
        where = str(manifests)
    _print_export_report(documents, where, review)
    return EXIT_OK


def _write_export(manifests: Path, text: str, files: dict[str, bytes]) -> None:
    """The manifests file, and each file it names at its path relative to it (never outside)."""
    base = manifests.parent
    base.mkdir(parents=True, exist_ok=True)
    for relative, content in sorted(files.items()):
        target = (base / relative).resolve()
        if not target.is_relative_to(base.resolve()) or Path(relative).is_absolute():
            raise ValueError(f"export refused to write {relative!r} outside {base}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    manifests.write_text(text, encoding="utf-8")


def _print_export_report(documents: list[dict[str, Any]], where: str, review: list[str]) -> None:
    """On stderr: what was exported, what to review before applying it."""
    counts = Counter(str(d.get("kind")) for d in documents)
    listed = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing"
    print(f"Exported {listed} to {where}.", file=sys.stderr)
    placeholders = sum(text.count(PLACEHOLDER) for text in map(str, documents))
    if placeholders:
        review.insert(
            0,
            f"{placeholders} {PLACEHOLDER} placeholder(s): fill them in (validate lists each with"
            " its file and line; plan and apply refuse them until then)",
        )
    if review:
        print("Review before applying:", file=sys.stderr)
        for note in review:
            print(f"  - {redact_text(note)}", file=sys.stderr)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from controller.embedded import run_standalone

    check_port("port", args.host, args.port)
    run_standalone(
        host=args.host, port=args.port, workspaces=args.workspaces, scenario=args.scenario
    )
    return EXIT_OK


# -- plumbing ------------------------------------------------------------------------------------


def controller_config(args: argparse.Namespace) -> ControllerConfig:
    """The command line of plan, apply, export and run, as typed configuration."""
    return ControllerConfig(
        controller_id=args.controller_id,
        aws=AwsSettings(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url),
        prune=PruneSettings(
            enabled=getattr(args, "prune", False), max_deletes=getattr(args, "max_deletes", 5)
        ),
        apply_concurrency=getattr(args, "apply_concurrency", 4),
        sandbox=(
            SandboxConfig(
                workspaces=args.sandbox_workspaces,
                scenario=args.sandbox_scenario,
                log_level=args.sandbox_log_level,
            )
            if args.sandbox
            else None
        ),
    )


def service_config(args: argparse.Namespace) -> ServiceConfig:
    """``run``'s command line as typed configuration."""
    return ServiceConfig(
        controller=controller_config(args),
        loop=LoopSettings(
            interval_seconds=args.interval,
            jitter_fraction=args.jitter,
            enforce=args.mode == "enforce",
            max_iterations=args.iterations,
            requeue_seconds=args.requeue_seconds,
        ),
        directory=args.directory,
        git=(
            GitConfig(
                url=args.git_url,
                ref=args.git_ref,
                path=args.git_path,
                workdir=args.git_dir,
                timeout_seconds=args.git_timeout,
            )
            if args.git_url
            else None
        ),
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        webhook_secret_file=args.webhook_secret_file,
        webhook_max_bytes=args.webhook_max_bytes,
        targets_file=args.targets,
        leases=(
            LeaseConfig(
                table=args.lease_table,
                duration_seconds=args.lease_duration,
                renew_deadline_seconds=args.lease_renew_deadline,
                retry_period_seconds=args.lease_retry_period,
                replica_id=args.replica_id,
            )
            if args.lease_table
            else None
        ),
        events=EventsConfig(
            queue_url=args.events_queue_url,
            relist_interval_seconds=args.relist_interval,
            batch_seconds=args.events_batch_seconds,
        ),
        enrollment=EnrollmentConfig(
            port=args.enroll_port,
            host=args.enroll_host,
            tls_cert=args.enroll_tls_cert,
            tls_key=args.enroll_tls_key,
            trusted_proxies=tuple(args.enroll_trusted_proxy),
            rate_per_source=args.enroll_rate_per_source,
            burst_per_source=args.enroll_burst_per_source,
            rate_total=args.enroll_rate_total,
            burst_total=args.enroll_burst_total,
        ),
    )


@contextmanager
def controller_session(
    config: ControllerConfig, desired: DesiredState | None
) -> Iterator[tuple[Reconciler, Metrics]]:
    """An AwsApi, metrics and a Reconciler, against AWS or an embedded sandbox."""
    embedded = None
    if config.sandbox is not None:
        from controller.embedded import start_embedded

        embedded = start_embedded(
            config.aws,
            desired,
            config.sandbox.workspaces,
            config.sandbox.scenario,
            log_level=config.sandbox.log_level,
        )
    metrics = Metrics(controller_id=config.controller_id, process_metrics=True)
    try:
        yield config.reconciler(default_target(config.aws, metrics).aws, metrics), metrics
    finally:
        if embedded is not None:
            embedded.stop()


class _LeaseRefused(Exception):
    """apply could not take the target's lease: said in one line, exit 1."""


@contextmanager
def _apply_lease(args: argparse.Namespace) -> Iterator[ExclusiveLease | None]:
    """With ``--lease-table``, hold the target's lease for the whole apply (None without)."""
    if not args.lease_table:
        yield None
        return
    settings = LeaseSettings(
        duration_seconds=args.lease_duration,
        renew_deadline_seconds=args.lease_renew_deadline,
        retry_period_seconds=args.lease_retry_period,
    )
    base = AwsSettings(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    holder = args.replica_id or f"apply-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    lease = ExclusiveLease(
        LeaseTable(lease_api(base, settings, CallRecorder()), args.lease_table),
        args.lease_target,
        holder,
        settings,
    )
    try:
        lease.acquire()
    except LeaseUnavailable as refused:
        raise _LeaseRefused(str(refused)) from None
    try:
        yield lease
    finally:
        lease.release()


def _render(plan: Plan, fmt: str, stream: TextIO) -> str:
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "json":
        return render_json(plan)
    return render_text(plan, colour=_colour(stream))


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


@contextmanager
def _stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT ask for a clean stop: the operation in flight finishes first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        log.info(
            "stop requested",
            summary=f"stopping ({name}): what is in flight finishes first",
            signal=name,
        )
        request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


if __name__ == "__main__":
    sys.exit(main())
