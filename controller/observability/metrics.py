"""The controller's Prometheus metrics, in a registry of their own.

Each ``Metrics`` owns a ``CollectorRegistry`` so tests (and several controllers in one process)
never collide on the global registry. Every per-target series carries a ``target`` label (one
controller may reconcile several account/region targets); the few controller-wide series
(``CONTROLLER_WIDE``) do not.

Gauges that describe a snapshot of live state (drift by kind, activations, instances by status)
must be set with :meth:`Metrics.set_gauge_family`, which also removes the label sets missing from
the new snapshot: a deleted activation must not leave a stale series behind for alerts to fire on.
Counters are only ever incremented.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from controller.observability.redaction import contains_secret, redact_text

DEFAULT_TARGET = "default"
STANDARD_TIER_INSTANCE_QUOTA = 1000

RECONCILE_RESULTS = ("success", "error", "invalid")
AWS_OUTCOMES = ("success", "throttled", "server_error", "client_error", "connection_error")
PING_STATUSES = ("Online", "ConnectionLost", "Inactive")  # botocore ssm PingStatus enum
# 0.1 s (a no-op reconcile of a tiny fleet) .. 10 min (a first apply of thousands of instances).
RECONCILE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

# Series that describe the controller process or its single desired-state source, not a target.
CONTROLLER_WIDE = frozenset(
    {
        "fleet_desired_state_valid",
        "fleet_desired_state_info",
        "fleet_webhook_requests",
        "fleet_controller_info",
    }
)

LabelKey = str | tuple[str, ...]


class GaugeValues(Protocol):
    """Any mapping from label key to value (``Mapping`` itself is invariant in its key type)."""

    def items(self) -> Iterable[tuple[LabelKey, float]]: ...


@dataclass(frozen=True)
class ActivationStats:
    """What the metrics need to know about one activation (never its code)."""

    expiry_timestamp: float
    registrations: int
    registration_limit: int


def _package_version() -> str:
    try:
        return metadata.version("fleet-controller")
    except metadata.PackageNotFoundError:
        return "unknown"


def _check_label(value: str) -> str:
    """Label values are public; a secret in one is a bug, so refuse it instead of exporting it."""
    if contains_secret(value):
        raise ValueError("a metric label value contains a registered secret")
    return value


class Metrics:
    """All fleet_* metrics, one attribute each, in a private registry."""

    def __init__(
        self,
        *,
        controller_id: str = "fleet-controller",
        version: str | None = None,
        targets: Iterable[str] = (DEFAULT_TARGET,),
        process_metrics: bool = False,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        t = ("target",)

        self.reconciles_total = Counter(
            "fleet_reconciles_total",
            "Reconcile passes by result (success, error, invalid desired state).",
            [*t, "result"],
            registry=r,
        )
        self.reconcile_duration_seconds = Histogram(
            "fleet_reconcile_duration_seconds",
            "Wall time of one reconcile pass (observe, diff, apply).",
            t,
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.drifted_resources = Gauge(
            "fleet_drifted_resources",
            "Resources whose live state differs from desired state, by kind (last pass).",
            [*t, "kind"],
            registry=r,
        )
        self.managed_resources = Gauge(
            "fleet_managed_resources",
            "Resources declared in desired state and managed by this controller, by kind.",
            [*t, "kind"],
            registry=r,
        )
        self.apply_operations_total = Counter(
            "fleet_apply_operations_total",
            "Applied plan operations by kind, action (create/update/delete/...) and result.",
            [*t, "kind", "action", "result"],
            registry=r,
        )
        self.aws_api_calls_total = Counter(
            "fleet_aws_api_calls_total",
            "AWS API calls by service, operation and outcome (each attempt counts once).",
            [*t, "service", "operation", "outcome"],
            registry=r,
        )
        self.aws_api_retries_total = Counter(
            "fleet_aws_api_retries_total",
            "AWS API calls retried after throttling, a 5xx or a connection error.",
            [*t, "service", "operation"],
            registry=r,
        )
        self.last_successful_reconcile_timestamp_seconds = Gauge(
            "fleet_last_successful_reconcile_timestamp_seconds",
            "Unix time at which the last successful reconcile pass finished.",
            t,
            registry=r,
        )
        self.aws_clock_skew_seconds = Gauge(
            "fleet_aws_clock_skew_seconds",
            "AWS's clock minus this host's, from the Date header of AWS's latest answer"
            " (positive: AWS is ahead). Expiry is judged on AWS's clock.",
            t,
            registry=r,
        )
        self.desired_state_valid = Gauge(
            "fleet_desired_state_valid",
            "1 when the latest desired-state revision validated, 0 when it did not.",
            registry=r,
        )
        self.desired_state_info = Gauge(
            "fleet_desired_state_info",
            "1 for the desired-state revision currently enforced.",
            ["revision"],
            registry=r,
        )
        self.activation_expiry_timestamp_seconds = Gauge(
            "fleet_activation_expiry_timestamp_seconds",
            "Unix time at which the current activation expires, by Activation manifest name.",
            [*t, "activation"],
            registry=r,
        )
        self.activation_registrations = Gauge(
            "fleet_activation_registrations",
            "Instances registered through the current activation.",
            [*t, "activation"],
            registry=r,
        )
        self.activation_registration_limit = Gauge(
            "fleet_activation_registration_limit",
            "RegistrationLimit of the current activation.",
            [*t, "activation"],
            registry=r,
        )
        self.managed_instances = Gauge(
            "fleet_managed_instances",
            "SSM managed instances by ping status.",
            [*t, "ping_status"],
            registry=r,
        )
        self.managed_instance_quota = Gauge(
            "fleet_managed_instance_quota",
            "Hybrid managed instances allowed per account and Region (standard tier: 1,000).",
            t,
            registry=r,
        )
        self.workspaces_not_onboarded = Gauge(
            "fleet_workspaces_not_onboarded",
            "WorkSpaces selected by a TagSync that have no managed instance.",
            [*t, "tagsync"],
            registry=r,
        )
        self.stale_instances = Gauge(
            "fleet_stale_instances",
            "Managed instances in a TagSync's scope with no matching WorkSpace.",
            [*t, "tagsync"],
            registry=r,
        )
        self.association_instances = Gauge(
            "fleet_association_instances",
            "Instances per association and package by association status.",
            [*t, "association", "package", "status"],
            registry=r,
        )
        self.package_noncompliant_instances = Gauge(
            "fleet_package_noncompliant_instances",
            "Instances where a package's detection method says it is not installed.",
            [*t, "package"],
            registry=r,
        )
        self.leader = Gauge(
            "fleet_leader",
            "1 when this replica holds the target's lease and may write to it.",
            t,
            registry=r,
        )
        self.webhook_requests_total = Counter(
            "fleet_webhook_requests_total",
            "Webhook requests by result (accepted, bad_signature, missing_signature, too_large...).",
            ["result"],
            registry=r,
        )
        self.controller_info = Gauge(
            "fleet_controller_info",
            "Always 1; carries the controller's version and id.",
            ["version", "controller_id"],
            registry=r,
        )
        self.controller_info.labels(
            version=version or _package_version(), controller_id=_check_label(controller_id)
        ).set(1)

        # Label sets last written per (gauge, target) by set_gauge_family, to remove stale ones.
        self._families: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self._revision: str | None = None
        self._lock = threading.Lock()
        for target in targets:
            self.add_target(target)

    # -- generic helpers ---------------------------------------------------------------------

    def add_target(self, target: str) -> None:
        """Create a target's always-present series so dashboards and ``rate()`` see zeros."""
        _check_label(target)
        for result in RECONCILE_RESULTS:
            self.reconciles_total.labels(target=target, result=result)
        self.reconcile_duration_seconds.labels(target=target)
        self.managed_instance_quota.labels(target=target).set(STANDARD_TIER_INSTANCE_QUOTA)
        self.leader.labels(target=target).set(0)

    def set_gauge_family(self, gauge: Gauge, target: str, values: GaugeValues) -> None:
        """Make ``gauge``'s series for ``target`` exactly ``values``; remove every other label set.

        Keys are the label values after ``target``, in the gauge's label order: a string for a
        gauge with one more label, a tuple otherwise. Other targets' series are untouched.
        """
        names = tuple(gauge._labelnames)
        if not names or names[0] != "target":
            raise ValueError(f"{gauge._name} has no leading target label")
        width = len(names) - 1
        _check_label(target)
        new: dict[tuple[str, ...], float] = {}
        for key, value in values.items():
            labels = (key,) if isinstance(key, str) else tuple(key)
            if len(labels) != width:
                raise ValueError(
                    f"{gauge._name} needs {width} label value(s) after target: {key!r}"
                )
            new[tuple(_check_label(str(v)) for v in labels)] = float(value)
        with self._lock:
            slot = (gauge._name, target)
            # Set before removing, so a concurrent scrape never sees the family half-empty.
            for labels, value in new.items():
                gauge.labels(target, *labels).set(value)
            for stale in self._families.get(slot, set()) - new.keys():
                with contextlib.suppress(KeyError):  # already removed by someone else
                    gauge.remove(target, *stale)
            self._families[slot] = set(new)

    set_family = set_gauge_family  # shorter name some callers use

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Exposition bytes and content type for an HTTP Accept header.

        The text is passed through redaction as a last net behind ``_check_label``.
        """
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        return redact_text(body.decode("utf-8")).encode("utf-8"), content_type

    def text(self) -> str:
        """The Prometheus text format, for tests and the benchmark."""
        return redact_text(generate_latest(self.registry).decode("utf-8"))

    # -- what the controller records ---------------------------------------------------------

    def record_reconcile(
        self, target: str, result: str, duration_seconds: float, finished_at: float
    ) -> None:
        """Count one pass; a success also moves the last-success timestamp to ``finished_at``."""
        if result not in RECONCILE_RESULTS:
            raise ValueError(f"reconcile result must be one of {RECONCILE_RESULTS}: {result!r}")
        self.reconciles_total.labels(target=target, result=result).inc()
        self.reconcile_duration_seconds.labels(target=target).observe(duration_seconds)
        if result == "success":
            self.last_successful_reconcile_timestamp_seconds.labels(target=target).set(finished_at)

    def record_aws_call(self, target: str, service: str, operation: str, outcome: str) -> None:
        if outcome not in AWS_OUTCOMES:
            raise ValueError(f"AWS call outcome must be one of {AWS_OUTCOMES}: {outcome!r}")
        self.aws_api_calls_total.labels(
            target=target, service=service, operation=operation, outcome=outcome
        ).inc()

    def record_aws_retry(self, target: str, service: str, operation: str) -> None:
        self.aws_api_retries_total.labels(target=target, service=service, operation=operation).inc()

    def record_apply(self, target: str, kind: str, action: str, result: str) -> None:
        self.apply_operations_total.labels(
            target=target, kind=kind, action=action, result=result
        ).inc()

    def set_desired_state(self, valid: bool, revision: str | None = None) -> None:
        """Validity of the latest revision; ``revision`` is the one being enforced (if any)."""
        self.desired_state_valid.set(1 if valid else 0)
        if revision is not None and revision != self._revision:
            with self._lock:
                self.desired_state_info.labels(revision=_check_label(revision)).set(1)
                if self._revision is not None:
                    with contextlib.suppress(KeyError):
                        self.desired_state_info.remove(self._revision)
                self._revision = revision

    def set_aws_clock_skew(self, target: str, seconds: float) -> None:
        self.aws_clock_skew_seconds.labels(target=_check_label(target)).set(seconds)

    def set_leader(self, target: str, leader: bool) -> None:
        self.leader.labels(target=_check_label(target)).set(1 if leader else 0)

    def set_activations(self, target: str, activations: Mapping[str, ActivationStats]) -> None:
        """Replace the target's activation series; keys are Activation manifest names."""
        self.set_gauge_family(
            self.activation_expiry_timestamp_seconds,
            target,
            {name: a.expiry_timestamp for name, a in activations.items()},
        )
        self.set_gauge_family(
            self.activation_registrations,
            target,
            {name: a.registrations for name, a in activations.items()},
        )
        self.set_gauge_family(
            self.activation_registration_limit,
            target,
            {name: a.registration_limit for name, a in activations.items()},
        )

    def set_managed_instances(self, target: str, by_ping_status: Mapping[str, int]) -> None:
        """Counts by ping status; the known statuses are always exported, as 0 when absent."""
        counts: dict[LabelKey, float] = dict.fromkeys(PING_STATUSES, 0.0)
        counts.update(by_ping_status)
        self.set_gauge_family(self.managed_instances, target, counts)


def metric_families(metrics: Metrics) -> list[MetricWrapperBase]:
    """Every fleet_* metric object of ``metrics`` (for docs and completeness tests)."""
    return [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
