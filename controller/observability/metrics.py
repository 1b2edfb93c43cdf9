"""The controller's Prometheus metrics, in a registry of their own.

Each ``Metrics`` owns a ``CollectorRegistry`` so tests (and several controllers in one process)
never collide on the global registry. Every per-target series carries a ``target`` label (one
controller may reconcile several account/region targets); the few controller-wide series
(``CONTROLLER_WIDE``) do not.

One path: every series is written through a method here (``record_*``, ``set_*``), which also
remembers which label sets it wrote, so a snapshot gauge drops the label sets missing from the
next snapshot (a deleted activation leaves no series for alerts to fire on) and a replica that
loses a target's lease forgets exactly that target's status (``forget_target``), without reading
prometheus-client's private attributes. Kinds declare their own status gauges
(``controller.contract.GaugeFamily``); the engine declares them here and sets them from each
kind's status, so this module names no kind. Counters are only ever incremented.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from controller.contract.status import GaugeFamily, Health
from controller.observability.redaction import contains_secret, redact_text

DEFAULT_TARGET = "default"
STANDARD_TIER_INSTANCE_QUOTA = 1000

RECONCILE_RESULTS = ("success", "error", "invalid")
AWS_OUTCOMES = ("success", "throttled", "server_error", "client_error", "connection_error")
# 0.1 s (a no-op reconcile of a tiny fleet) .. 10 min (a first apply of thousands of instances).
RECONCILE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
EVENT_OUTCOMES = ("news", "echo", "nothing", "foreign", "unreadable")
# A targeted pass: a tenth of a second (cached, one write) .. a minute (a burst of hundreds).
TARGETED_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# Series that describe the controller process or its single desired-state source, not a target.
CONTROLLER_WIDE = frozenset(
    {
        "fleet_desired_state_valid",
        "fleet_desired_state_info",
        "fleet_desired_state_fetch_timestamp_seconds",
        "fleet_webhook_requests",
        "fleet_enrollment_requests",
        "fleet_controller_info",
    }
)
# Per-target series a replica keeps exporting for a target whose lease it does not hold: the
# lease itself and a constant. Everything else describes what the holder saw.
KEPT_WHEN_NOT_HOLDER = frozenset({"fleet_leader", "fleet_managed_instance_quota"})

LabelKey = str | tuple[str, ...]


class GaugeValues(Protocol):
    """Any mapping from label key to value (``Mapping`` itself is invariant in its key type)."""

    def items(self) -> Iterable[tuple[LabelKey, float]]: ...


@dataclass(frozen=True)
class _Family:
    """What this module knows of a gauge it created (so it never asks prometheus-client)."""

    name: str
    labels: tuple[str, ...]


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
    """All fleet_* metrics in a private registry; every write goes through a method here."""

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
        self._lock = threading.RLock()
        self._gauges: dict[int, _Family] = {}  # id(gauge) -> its name and labels
        self._by_name: dict[str, Gauge] = {}
        self._collectors: list[Collector] = []
        # Values written per (gauge name, target), by label values after target: to drop what
        # a new snapshot lacks, to replace one kind's slice of a shared gauge, to forget a target.
        self._written: dict[tuple[str, str], dict[tuple[str, ...], float]] = {}
        self._revision: str | None = None

        self.reconciles_total = self._add(
            Counter(
                "fleet_reconciles_total",
                "Reconcile passes by result: success (everything applied), error (an operation"
                " failed, was deferred or blocked, or the pass failed), invalid desired state.",
                [*t, "result"],
                registry=r,
            )
        )
        self.reconcile_duration_seconds = self._add(
            Histogram(
                "fleet_reconcile_duration_seconds",
                "Wall time of one reconcile pass (observe, diff, apply).",
                t,
                buckets=RECONCILE_BUCKETS,
                registry=r,
            )
        )
        self.drifted_resources = self._gauge(
            "fleet_drifted_resources",
            "Resources whose live state differs from desired state, by kind (last pass).",
            [*t, "kind"],
        )
        self.managed_resources = self._gauge(
            "fleet_managed_resources",
            "Resources declared in desired state and managed by this controller, by kind.",
            [*t, "kind"],
        )
        self.resources = self._gauge(
            "fleet_resources",
            "Desired resources by kind and health (Healthy, Progressing, Degraded, Missing,"
            " Unknown), as each kind judges what it observed.",
            [*t, "kind", "health"],
        )
        self.refused_resources = self._gauge(
            "fleet_refused_resources",
            "Resources the last pass would not touch, by kind and state: refused (someone"
            " else's, or a guard said no) or blocked (a resource it depends on was refused, or"
            " failed, was deferred or blocked in the pass).",
            [*t, "kind", "state"],
        )
        self.apply_operations_total = self._add(
            Counter(
                "fleet_apply_operations_total",
                "Applied plan operations by kind, action (create/update/delete/...) and result.",
                [*t, "kind", "action", "result"],
                registry=r,
            )
        )
        self.aws_api_calls_total = self._add(
            Counter(
                "fleet_aws_api_calls_total",
                "AWS API calls by service, operation and outcome (each attempt counts once).",
                [*t, "service", "operation", "outcome"],
                registry=r,
            )
        )
        self.aws_api_retries_total = self._add(
            Counter(
                "fleet_aws_api_retries_total",
                "AWS API calls retried after throttling, a 5xx or a connection error.",
                [*t, "service", "operation"],
                registry=r,
            )
        )
        self.aws_clock_skew_seconds = self._gauge(
            "fleet_aws_clock_skew_seconds",
            "AWS's clock minus this host's, from the Date header of AWS's latest answer"
            " (positive: AWS is ahead). Expiry is judged on AWS's clock.",
            t,
        )
        self.last_successful_reconcile_timestamp_seconds = self._gauge(
            "fleet_last_successful_reconcile_timestamp_seconds",
            "Unix time at which the last successful reconcile pass finished.",
            t,
        )
        self.desired_state_valid = self._gauge(
            "fleet_desired_state_valid",
            "1 when the latest desired-state revision validated, 0 when it did not.",
            [],
        )
        self.desired_state_info = self._gauge(
            "fleet_desired_state_info",
            "1 for the desired-state revision currently enforced.",
            ["revision"],
        )
        self.desired_state_fetch_timestamp_seconds = self._gauge(
            "fleet_desired_state_fetch_timestamp_seconds",
            "Unix time of the last successful read of the desired-state source (valid or not).",
            [],
        )
        self.managed_instance_quota = self._gauge(
            "fleet_managed_instance_quota",
            "Hybrid managed instances allowed per account and Region (standard tier: 1,000).",
            t,
        )
        self.leader = self._gauge(
            "fleet_leader",
            "1 when this replica holds the target's lease and may write to it.",
            t,
        )
        self.webhook_requests_total = self._add(
            Counter(
                "fleet_webhook_requests_total",
                "Webhook requests by result (accepted, bad_signature, missing_signature,"
                " too_large...).",
                ["result"],
                registry=r,
            )
        )
        self.enrollment_requests_total = self._add(
            Counter(
                "fleet_enrollment_requests_total",
                "Enrollment asks by decision (issued, reused, refused_*, rate_limited_*, busy,"
                " bad_request, unavailable, error).",
                ["result"],
                registry=r,
            )
        )
        self.events_received_total = self._add(
            Counter(
                "fleet_events_received_total",
                "EventBridge events read from the target's queue, by type (the detail-type, or the"
                " CloudTrail eventName) and outcome: news (reconciled), echo (the cache already"
                " holds it), nothing (names no WorkSpace or instance), foreign (another account"
                " or Region), unreadable.",
                [*t, "type", "outcome"],
                registry=r,
            )
        )
        self.targeted_reconciles_total = self._add(
            Counter(
                "fleet_targeted_reconciles_total",
                "Event-driven passes over only the resources the events named, by result.",
                [*t, "result"],
                registry=r,
            )
        )
        self.targeted_reconcile_duration_seconds = self._add(
            Histogram(
                "fleet_targeted_reconcile_duration_seconds",
                "Wall time of one event-driven pass (targeted reads, diff, writes).",
                t,
                buckets=TARGETED_BUCKETS,
                registry=r,
            )
        )
        self.relist_duration_seconds = self._add(
            Histogram(
                "fleet_relist_duration_seconds",
                "Wall time of reading the whole fleet in a full pass (its count: the relists).",
                t,
                buckets=RECONCILE_BUCKETS,
                registry=r,
            )
        )
        self.cache_pinned_resources = self._gauge(
            "fleet_cache_pinned_resources",
            "Resources whose tags the live cache holds against the tagging API's older view"
            " (written or read consistently, not yet shown by the index), after the last relist.",
            t,
        )
        self._relisted: dict[str, float] = {}  # target -> unix time its last relist began
        cache_age = _CacheAge(self._relisted, self._lock)
        self.registry.register(cache_age)
        self._add(cache_age)
        self.controller_info = self._gauge(
            "fleet_controller_info",
            "Always 1; carries the controller's version and id.",
            ["version", "controller_id"],
        )
        self.controller_info.labels(
            version=version or _package_version(), controller_id=_check_label(controller_id)
        ).set(1)
        for target in targets:
            self.add_target(target)

    # -- families ------------------------------------------------------------------------------

    def _add(self, collector: _C) -> _C:
        self._collectors.append(collector)
        return collector

    def _gauge(self, name: str, documentation: str, labels: Iterable[str]) -> Gauge:
        gauge = Gauge(name, documentation, list(labels), registry=self.registry)
        self._gauges[id(gauge)] = _Family(name, tuple(labels))
        self._by_name[name] = gauge
        return self._add(gauge)

    def declare(self, family: GaugeFamily) -> Gauge:
        """A kind's status gauge, created once (declaring it again returns the same one)."""
        with self._lock:
            existing = self._by_name.get(family.metric_name)
            if existing is not None:
                known = self._gauges[id(existing)].labels
                if known != ("target", *family.labels):
                    raise ValueError(f"{family.metric_name} is declared with labels {known}")
                return existing
            return self._gauge(family.metric_name, family.help, ("target", *family.labels))

    def gauge(self, metric_name: str) -> Gauge:
        """A gauge by its full name (``fleet_...``), declared here or by a kind."""
        return self._by_name[metric_name]

    def collectors(self) -> list[Collector]:
        """Every fleet_* metric object (for docs and completeness tests)."""
        with self._lock:
            return list(self._collectors)

    # -- generic helpers ---------------------------------------------------------------------

    def add_target(self, target: str) -> None:
        """Create a target's always-present series so dashboards and ``rate()`` see zeros."""
        _check_label(target)
        for result in RECONCILE_RESULTS:
            self.reconciles_total.labels(target=target, result=result)
        self.reconcile_duration_seconds.labels(target=target)
        self.relist_duration_seconds.labels(target=target)
        self.targeted_reconcile_duration_seconds.labels(target=target)
        for result in ("success", "error"):
            self.targeted_reconciles_total.labels(target=target, result=result)
        self.set_gauge(self.managed_instance_quota, target, STANDARD_TIER_INSTANCE_QUOTA)
        self.set_gauge(self.leader, target, 0)

    def set_gauge(self, gauge: Gauge, target: str, value: float) -> None:
        """Set a gauge whose only label is ``target``."""
        self.set_gauge_family(gauge, target, {(): value})

    def set_gauge_family(self, gauge: Gauge, target: str, values: GaugeValues) -> None:
        """Make ``gauge``'s series for ``target`` exactly ``values``; remove every other label set.

        Keys are the label values after ``target``, in the gauge's label order: a string for a
        gauge with one more label, a tuple otherwise. Other targets' series are untouched.
        """
        family = self._gauges.get(id(gauge))
        if family is None or not family.labels or family.labels[0] != "target":
            raise ValueError("set_gauge_family needs a per-target gauge made by Metrics")
        width = len(family.labels) - 1
        _check_label(target)
        new: dict[tuple[str, ...], float] = {}
        for key, value in values.items():
            labels = (key,) if isinstance(key, str) else tuple(key)
            if len(labels) != width:
                raise ValueError(
                    f"{family.name} needs {width} label value(s) after target: {key!r}"
                )
            new[tuple(_check_label(str(v)) for v in labels)] = float(value)
        with self._lock:
            slot = (family.name, target)
            # Set before removing, so a concurrent scrape never sees the family half-empty.
            for labels, value in new.items():
                gauge.labels(target, *labels).set(value)
            for stale in self._written.get(slot, {}).keys() - new.keys():
                with contextlib.suppress(KeyError):  # already removed by someone else
                    gauge.remove(target, *stale)
            self._written[slot] = new

    set_family = set_gauge_family  # shorter name some callers use

    def forget_target(self, target: str, keep: frozenset[str] = KEPT_WHEN_NOT_HOLDER) -> None:
        """Remove every status series this Metrics wrote for ``target`` (drift, activations,
        instances, last success, ...) except the families in ``keep``. Counters stay (they only
        ever grow and ``rate()`` copes)."""
        with self._lock:
            for (name, written_for), _ in list(self._written.items()):
                if written_for == target and name not in keep:
                    self.set_gauge_family(self._by_name[name], target, {})
            self._relisted.pop(target, None)

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
            self.set_gauge(self.last_successful_reconcile_timestamp_seconds, target, finished_at)

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

    def set_drift(self, target: str, by_kind: Mapping[str, int]) -> None:
        self.set_gauge_family(self.drifted_resources, target, dict(by_kind))

    def set_kind_status(
        self,
        target: str,
        kind: str,
        families: Iterable[GaugeFamily],
        gauges: Mapping[str, Mapping[tuple[str, ...], float]] | None,
        managed: int | None,
        health: Mapping[Health, int] | None,
    ) -> None:
        """One kind's status after a pass. None (the kind was not observed: nothing of it is
        desired) removes its series instead of leaving what an older pass saw."""
        for family in families:
            values = (gauges or {}).get(family.name, {})
            self.set_gauge_family(self.declare(family), target, values)
        managed_values: dict[LabelKey, float] = {(): managed} if managed is not None else {}
        self._set_slice(self.managed_resources, target, (kind,), managed_values)
        counts: dict[LabelKey, float] = {}
        if health is not None:
            counts = {(state.value,): float(health.get(state, 0)) for state in Health}
        self._set_slice(self.resources, target, (kind,), counts)

    def _set_slice(
        self, gauge: Gauge, target: str, prefix: tuple[str, ...], values: GaugeValues
    ) -> None:
        """Replace the label sets of ``gauge`` that start with ``prefix`` (after target)."""
        family = self._gauges[id(gauge)]
        with self._lock:
            current = self._written.get((family.name, target), {})
            merged: dict[LabelKey, float] = {
                labels: value
                for labels, value in current.items()
                if labels[: len(prefix)] != prefix
            }
            for key, value in values.items():
                labels = (key,) if isinstance(key, str) else tuple(key)
                merged[(*prefix, *labels)] = float(value)
            self.set_gauge_family(gauge, target, merged)

    def set_refusals(self, target: str, by_kind_and_state: GaugeValues) -> None:
        self.set_gauge_family(self.refused_resources, target, by_kind_and_state)

    def set_aws_clock_skew(self, target: str, seconds: float) -> None:
        self.set_gauge(self.aws_clock_skew_seconds, target, seconds)

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

    def set_desired_state_fetched(self, timestamp: float) -> None:
        self.desired_state_fetch_timestamp_seconds.set(timestamp)

    def set_leader(self, target: str, leader: bool) -> None:
        self.set_gauge(self.leader, _check_label(target), 1 if leader else 0)

    def record_event(self, target: str, event_type: str, outcome: str) -> None:
        if outcome not in EVENT_OUTCOMES:
            raise ValueError(f"event outcome must be one of {EVENT_OUTCOMES}: {outcome!r}")
        self.events_received_total.labels(
            target=target, type=_check_label(event_type), outcome=outcome
        ).inc()

    def record_targeted(self, target: str, result: str, duration_seconds: float) -> None:
        if result not in ("success", "error"):
            raise ValueError(f"a targeted pass is a success or an error: {result!r}")
        self.targeted_reconciles_total.labels(target=target, result=result).inc()
        self.targeted_reconcile_duration_seconds.labels(target=target).observe(duration_seconds)

    def record_relist(self, target: str, duration_seconds: float, began_at: float) -> None:
        """A full read of the fleet that began at unix time ``began_at``: the cache's age is
        counted from then."""
        self.relist_duration_seconds.labels(target=target).observe(duration_seconds)
        with self._lock:
            self._relisted[_check_label(target)] = began_at

    def set_cache_pinned(self, target: str, pinned: int) -> None:
        self.set_gauge(self.cache_pinned_resources, target, pinned)

    def relists(self, target: str) -> int:
        """How many relists this Metrics recorded for ``target`` (benchmarks and tests)."""
        for metric in self.relist_duration_seconds.collect():
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels.get("target") == target:
                    return int(sample.value)
        return 0


class _CacheAge(Collector):
    """``fleet_cache_age_seconds{target}``: seconds since the last relist began, at scrape."""

    def __init__(self, relisted: dict[str, float], lock: threading.RLock) -> None:
        self._relisted = relisted
        self._lock = lock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "fleet_cache_age_seconds",
            "Seconds since the live cache was last filled by a full relist (events keep it fresh"
            " in between).",
            labels=["target"],
        )
        now = time.time()
        with self._lock:
            for target, began in sorted(self._relisted.items()):
                family.add_metric([target], max(0.0, now - began))
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


_C = TypeVar("_C", bound=Collector)


def metric_families(metrics: Metrics) -> list[Collector]:
    """Every fleet_* metric object of ``metrics`` (for docs and completeness tests)."""
    return metrics.collectors()
