"""Metrics as Prometheus sees them: scraped over real HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from controller.contract import Health
from controller.contract.registry import kind_named, registered
from controller.kinds.tagsync import PING_STATUSES
from controller.observability.http import ObservabilityServer
from controller.observability.metrics import CONTROLLER_WIDE, Metrics
from controller.observability.redaction import register_secret

from .helpers import http

# Every family the brief asks for (names as the text parser reports them: counters lose _total).
REQUIRED = {
    "fleet_reconciles": "counter",
    "fleet_reconcile_duration_seconds": "histogram",
    "fleet_drifted_resources": "gauge",
    "fleet_managed_resources": "gauge",
    "fleet_apply_operations": "counter",
    "fleet_aws_api_calls": "counter",
    "fleet_aws_api_retries": "counter",
    "fleet_aws_clock_skew_seconds": "gauge",
    "fleet_last_successful_reconcile_timestamp_seconds": "gauge",
    "fleet_desired_state_valid": "gauge",
    "fleet_desired_state_info": "gauge",
    "fleet_desired_state_fetch_timestamp_seconds": "gauge",
    "fleet_resources": "gauge",
    "fleet_refused_resources": "gauge",
    "fleet_activation_expiry_timestamp_seconds": "gauge",
    "fleet_activation_registrations": "gauge",
    "fleet_activation_registration_limit": "gauge",
    "fleet_managed_instances": "gauge",
    "fleet_managed_instance_quota": "gauge",
    "fleet_workspaces_not_onboarded": "gauge",
    "fleet_stale_instances": "gauge",
    "fleet_association_instances": "gauge",
    "fleet_package_noncompliant_instances": "gauge",
    "fleet_leader": "gauge",
    "fleet_webhook_requests": "counter",
    "fleet_enrollment_requests": "counter",
    "fleet_enrollment_activations": "gauge",
    "fleet_impostor_instances": "gauge",
    "fleet_controller_info": "gauge",
    # events and the live cache
    "fleet_events_received": "counter",
    "fleet_targeted_reconciles": "counter",
    "fleet_targeted_reconcile_duration_seconds": "histogram",
    "fleet_relist_duration_seconds": "histogram",
    "fleet_cache_age_seconds": "gauge",
    "fleet_cache_pinned_resources": "gauge",
}


class Scraper:
    def __init__(self, server: ObservabilityServer) -> None:
        self.url = server.url + "/metrics"

    def families(self) -> dict[str, Metric]:
        response = http(self.url)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.body.decode()
        return {f.name: f for f in text_string_to_metric_families(text)}

    def samples(
        self, family: str, sample: str | None = None
    ) -> dict[frozenset[tuple[str, str]], float]:
        """{label set: value} for one family (and one sample name within it)."""
        name = sample or family
        return {
            frozenset(s.labels.items()): s.value
            for s in self.families()[family].samples
            if s.name == name
        }


def with_kind_gauges(metrics: Metrics) -> Metrics:
    """As a Reconciler does: every kind's declared status gauges."""
    for kind in registered():
        for family in kind.gauges:
            metrics.declare(family)
    return metrics


@pytest.fixture
def metrics() -> Metrics:
    return with_kind_gauges(Metrics(controller_id="ctl-test", targets=("default", "eu")))


def set_activations(m: Metrics, target: str, by_name: dict[str, tuple[float, int, int]]) -> None:
    """The Activation kind's status as the engine exports it: expiry, registrations, limit."""
    names = ("activation_expiry_timestamp_seconds", "activation_registrations")
    names += ("activation_registration_limit",)
    gauges = {
        name: {(activation,): values[i] for activation, values in by_name.items()}
        for i, name in enumerate(names)
    }
    kind = kind_named("Activation")
    m.set_kind_status(target, "Activation", kind.gauges, gauges, len(by_name), {})


@pytest.fixture
def scrape(metrics: Metrics) -> Iterator[Scraper]:
    with ObservabilityServer(metrics, host="127.0.0.1", port=0) as server:
        yield Scraper(server)


def L(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def populate(m: Metrics) -> None:
    """Touch every metric once, as a reconcile pass of the controller would."""
    m.record_reconcile("default", "success", 2.5, finished_at=1_700_000_000)
    m.record_apply("default", "TagSync", "update", "success")
    m.record_aws_call("default", "ssm", "DescribeInstanceInformation", "success")
    m.record_aws_retry("default", "ssm", "AddTagsToResource")
    m.set_aws_clock_skew("default", 42.5)
    m.set_drift("default", {"TagSync": 3})
    m.set_refusals("default", {("Package", "refused"): 1, ("Association", "blocked"): 2})
    m.set_desired_state(True, "0123abcd")
    m.set_desired_state_fetched(1_700_000_000)
    set_activations(m, "default", {"fleet": (1_700_086_400, 12, 1000)})
    tagsync = kind_named("TagSync")
    pings = {("Online",): 190.0, ("ConnectionLost",): 10.0, ("Inactive",): 0.0}
    m.set_kind_status(
        "default",
        "TagSync",
        tagsync.gauges,
        {
            "managed_instances": pings,
            "workspaces_not_onboarded": {("finance",): 4},
            "stale_instances": {("finance",): 1},
        },
        200,
        {Health.HEALTHY: 1, Health.DEGRADED: 1},
    )
    association = kind_named("Association")
    m.set_kind_status(
        "default",
        "Association",
        association.gauges,
        {
            "association_instances": {("install-7zip", "7zip", "Success"): 150},
            "package_noncompliant_instances": {("7zip",): 2},
        },
        1,
        {Health.DEGRADED: 1},
    )
    m.set_leader("default", True)
    m.record_event("default", "Tag Change on Resource", "news")
    m.record_targeted("default", "success", 0.4)
    m.record_relist("default", 12.0, began_at=1_700_000_000)
    m.set_cache_pinned("default", 7)
    m.webhook_requests_total.labels(result="accepted").inc()
    m.enrollment_requests_total.labels(result="issued").inc()
    enrollment = kind_named("Enrollment")
    m.set_kind_status(
        "default",
        "Enrollment",
        enrollment.gauges,
        {
            "enrollment_activations": {("waiting",): 2, ("registered",): 1},
            "impostor_instances": {(): 0},
        },
        3,
        {Health.HEALTHY: 1},
    )


def test_every_required_metric_is_served_with_a_target_label(
    metrics: Metrics, scrape: Scraper
) -> None:
    populate(metrics)
    families = {
        n: f
        for n, f in scrape.families().items()
        # prometheus_client's per-child creation times, exported as separate gauges
        if n.startswith("fleet_") and not n.endswith("_created")
    }
    assert {n: f.type for n, f in families.items()} == REQUIRED
    for name, family in families.items():
        assert family.samples, f"{name} has no samples"
        for sample in family.samples:
            if name in CONTROLLER_WIDE:
                assert "target" not in sample.labels, sample
            else:
                assert sample.labels.get("target") in ("default", "eu"), sample


def test_scraped_values_follow_what_was_recorded(metrics: Metrics, scrape: Scraper) -> None:
    populate(metrics)
    metrics.record_reconcile("default", "error", 0.05, finished_at=1_700_000_900)

    reconciles = scrape.samples("fleet_reconciles", "fleet_reconciles_total")
    assert reconciles[L(target="default", result="success")] == 1
    assert reconciles[L(target="default", result="error")] == 1
    assert reconciles[L(target="default", result="invalid")] == 0
    assert reconciles[L(target="eu", result="success")] == 0  # pre-created for rate()
    # A failed pass does not move the last-success timestamp.
    assert scrape.samples("fleet_last_successful_reconcile_timestamp_seconds") == {
        L(target="default"): 1_700_000_000
    }
    assert scrape.samples("fleet_managed_instance_quota") == {
        L(target="default"): 1000,
        L(target="eu"): 1000,
    }
    assert scrape.samples("fleet_managed_instances") == {
        L(target="default", ping_status="Online"): 190,
        L(target="default", ping_status="ConnectionLost"): 10,
        L(target="default", ping_status="Inactive"): 0,
    }
    assert set(PING_STATUSES) == {"Online", "ConnectionLost", "Inactive"}
    assert scrape.samples("fleet_leader") == {L(target="default"): 1, L(target="eu"): 0}
    assert scrape.samples("fleet_controller_info") == {
        L(version="0.1.0", controller_id="ctl-test"): 1
    }


def test_duration_histogram_covers_a_tenth_of_a_second_to_ten_minutes(
    metrics: Metrics, scrape: Scraper
) -> None:
    for seconds in (0.05, 3, 420, 900):
        metrics.record_reconcile("eu", "success", seconds, finished_at=1)
    buckets = {
        dict(k)["le"]: v
        for k, v in scrape.samples(
            "fleet_reconcile_duration_seconds", "fleet_reconcile_duration_seconds_bucket"
        ).items()
        if dict(k)["target"] == "eu"
    }
    assert float(min(buckets, key=float)) == 0.1
    assert max((b for b in buckets if b != "+Inf"), key=float) == "600.0"
    assert buckets["0.1"] == 1
    assert buckets["5.0"] == 2
    assert buckets["600.0"] == 3
    assert buckets["+Inf"] == 4


def test_stale_label_sets_disappear(metrics: Metrics, scrape: Scraper) -> None:
    a, b = (1000, 5, 100), (2000, 7, 200)
    set_activations(metrics, "default", {"finance": a, "sales": b})
    set_activations(metrics, "eu", {"finance": a})
    assert set(scrape.samples("fleet_activation_registrations")) == {
        L(target="default", activation="finance"),
        L(target="default", activation="sales"),
        L(target="eu", activation="finance"),
    }

    set_activations(metrics, "default", {"sales": b})  # finance's activation was deleted

    for family in (
        "fleet_activation_expiry_timestamp_seconds",
        "fleet_activation_registrations",
        "fleet_activation_registration_limit",
    ):
        # Gone for this target only: the other target's series is not this snapshot's business.
        assert set(scrape.samples(family)) == {
            L(target="default", activation="sales"),
            L(target="eu", activation="finance"),
        }, family
    assert (
        scrape.samples("fleet_activation_registration_limit")[
            L(target="default", activation="sales")
        ]
        == 200
    )

    instances = metrics.gauge("fleet_association_instances")
    metrics.set_gauge_family(
        instances,
        "default",
        {("install-7zip", "7zip", "Success"): 9, ("install-7zip", "7zip", "Failed"): 1},
    )
    metrics.set_gauge_family(instances, "default", {("install-7zip", "7zip", "Success"): 10})
    assert scrape.samples("fleet_association_instances") == {
        L(target="default", association="install-7zip", package="7zip", status="Success"): 10
    }
    set_activations(metrics, "default", {})
    assert set(scrape.samples("fleet_activation_registrations")) == {
        L(target="eu", activation="finance")
    }
    # A kind no longer observed (nothing of it desired) leaves nothing behind either.
    metrics.set_kind_status("eu", "Activation", kind_named("Activation").gauges, None, None, None)
    assert set(scrape.samples("fleet_activation_registrations")) == set()
    assert L(target="eu", kind="Activation") not in scrape.samples("fleet_managed_resources")


def test_one_kinds_status_leaves_the_other_kinds_series_alone(
    metrics: Metrics, scrape: Scraper
) -> None:
    tagsync, activation = kind_named("TagSync"), kind_named("Activation")
    metrics.set_kind_status("default", "TagSync", tagsync.gauges, {}, 7, {Health.HEALTHY: 2})
    metrics.set_kind_status("default", "Activation", activation.gauges, {}, 1, {})
    managed = scrape.samples("fleet_managed_resources")
    assert managed[L(target="default", kind="TagSync")] == 7
    assert managed[L(target="default", kind="Activation")] == 1
    resources = scrape.samples("fleet_resources")
    assert resources[L(target="default", kind="TagSync", health="Healthy")] == 2
    assert resources[L(target="default", kind="TagSync", health="Degraded")] == 0
    metrics.set_kind_status("default", "TagSync", tagsync.gauges, None, None, None)
    managed = scrape.samples("fleet_managed_resources")
    assert L(target="default", kind="TagSync") not in managed
    assert managed[L(target="default", kind="Activation")] == 1


def test_forgetting_a_target_removes_exactly_what_was_written_for_it(
    metrics: Metrics, scrape: Scraper
) -> None:
    populate(metrics)
    metrics.set_drift("eu", {"TagSync": 1})
    metrics.forget_target("default")
    families = scrape.families()
    for name, family in families.items():
        if not name.startswith("fleet_") or name in CONTROLLER_WIDE or name.endswith("_created"):
            continue
        for sample in family.samples:
            if sample.labels.get("target") != "default":
                continue
            assert name in {"fleet_leader", "fleet_managed_instance_quota"} or family.type in (
                "counter",
                "histogram",
            ), sample
    assert scrape.samples("fleet_drifted_resources") == {L(target="eu", kind="TagSync"): 1}


def test_counters_are_never_reset_by_gauge_snapshots(metrics: Metrics, scrape: Scraper) -> None:
    metrics.record_apply("default", "TagSync", "update", "success")
    metrics.set_gauge_family(metrics.drifted_resources, "default", {"TagSync": 1})
    metrics.set_gauge_family(metrics.drifted_resources, "default", {})
    metrics.record_apply("default", "TagSync", "update", "success")
    assert scrape.samples("fleet_apply_operations", "fleet_apply_operations_total") == {
        L(target="default", kind="TagSync", action="update", result="success"): 2
    }
    assert scrape.samples("fleet_drifted_resources") == {}


def test_only_the_current_revision_is_exported(metrics: Metrics, scrape: Scraper) -> None:
    metrics.set_desired_state(True, "aaaa111")
    metrics.set_desired_state(True, "bbbb222")
    assert scrape.samples("fleet_desired_state_info") == {L(revision="bbbb222"): 1}
    assert scrape.samples("fleet_desired_state_valid") == {L(): 1}
    # An invalid revision on top: validity drops, the enforced revision stays.
    metrics.set_desired_state(False)
    assert scrape.samples("fleet_desired_state_info") == {L(revision="bbbb222"): 1}
    assert scrape.samples("fleet_desired_state_valid") == {L(): 0}


def test_instances_are_isolated_registries() -> None:
    one, two = Metrics(), Metrics()
    one.record_aws_call("default", "ssm", "ListTagsForResource", "throttled")
    assert 'outcome="throttled"' in one.text()
    assert 'outcome="throttled"' not in two.text()


def test_secrets_never_become_label_values(metrics: Metrics, scrape: Scraper, secret: str) -> None:
    with pytest.raises(ValueError):
        metrics.set_gauge_family(metrics.drifted_resources, "default", {f"kind-{secret}": 1})
    with pytest.raises(ValueError):
        metrics.set_desired_state(True, secret)
    # Last net: a value registered as secret after it became a label is redacted on the way out.
    late = "late-secret-" + secret[-8:]
    metrics.record_apply("default", "TagSync", late, "success")
    register_secret(late)
    body = http(scrape.url).body.decode()
    assert secret not in body
    assert late not in body
    assert 'action="[REDACTED]"' in body


def test_closed_vocabularies_are_enforced(metrics: Metrics) -> None:
    with pytest.raises(ValueError):
        metrics.record_reconcile("default", "partial", 1, finished_at=1)
    with pytest.raises(ValueError):
        metrics.record_aws_call("default", "ssm", "GetParameter", "weird")
    with pytest.raises(ValueError):
        metrics.set_gauge_family(
            metrics.gauge("fleet_association_instances"), "default", {"only-one": 1}
        )
    with pytest.raises(ValueError):
        metrics.set_gauge_family(metrics.desired_state_info, "default", {})  # no target label


def test_openmetrics_is_negotiated(metrics: Metrics, scrape: Scraper) -> None:
    populate(metrics)
    response = http(scrape.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(response.body.decode())}
    assert families["fleet_reconciles"].type == "counter"
    assert families["fleet_leader"].samples[0].labels == {"target": "default"}
