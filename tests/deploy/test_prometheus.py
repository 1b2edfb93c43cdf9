"""The alert rules and the dashboard, checked by Prometheus's own promtool and against the metrics
the controller really exports.

promtool must be installed (Debian's ``prometheus`` package, from .ci/system-packages): without
it these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from controller.cli import build_parser
from controller.contract.registry import registered
from controller.observability import metrics as metrics_module
from controller.observability.metrics import Metrics
from tests.deploy.tools import run, tool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "fleet-controller.json"
REQUIRED_ALERTS = {
    "FleetDriftPersisting",
    "FleetResourcesRefused",
    "FleetReconcileFailing",
    "FleetReconcileStale",
    "FleetDesiredStateInvalid",
    "FleetActivationExpiringSoon",
    "FleetActivationRegistrationsExhausted",
    "FleetPackageInstallFailures",
    "FleetWorkSpacesNotOnboarded",
    "FleetManagedInstanceQuotaNearLimit",
    "FleetControllerAbsent",
}
# Grafana's variables, replaced by values of the same type so promtool can parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$target": ".*"}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_queries() -> list[str]:
    queries = []
    for panel in dashboard()["panels"]:
        queries += [target["expr"] for target in panel.get("targets", [])]
    return queries


def exported_names() -> set[str]:
    """Every fleet_* series name the controller can export: in its exposition (with every
    kind's declared status gauges, as a Reconciler declares them) or in metrics.py."""
    metrics = Metrics(process_metrics=True)
    for kind in registered():
        for family in kind.gauges:
            metrics.declare(family)
    exposition = metrics.text()
    return fleet_names(exposition) | fleet_names(Path(metrics_module.__file__).read_text("utf-8"))


def fleet_names(text: str) -> set[str]:
    return set(re.findall(r"\bfleet_[a-z_]+\b", text))


# -- promtool ------------------------------------------------------------------------------------


def test_promtool_check_rules_accepts_the_alert_rules():
    result = run([tool("promtool"), "check", "rules", "alerts.yaml"], cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass():
    result = run([tool("promtool"), "test", "rules", "alerts_test.yaml"], cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_fail_when_an_alert_is_wrong(tmp_path: Path):
    """The unit tests can fail: the drift alert counting each replica's copy (sum, not max)."""
    broken = (PROMETHEUS / "alerts.yaml").read_text(encoding="utf-8")
    assert "max by (target, kind) (fleet_drifted_resources)" in broken
    broken = broken.replace(
        "max by (target, kind) (fleet_drifted_resources)",
        "sum by (target, kind) (fleet_drifted_resources)",
    )
    (tmp_path / "alerts.yaml").write_text(broken, encoding="utf-8")
    (tmp_path / "alerts_test.yaml").write_text(
        (PROMETHEUS / "alerts_test.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = run([tool("promtool"), "test", "rules", "alerts_test.yaml"], cwd=tmp_path)
    assert result.returncode != 0
    assert "FleetDriftPersisting" in result.stdout + result.stderr


def test_every_dashboard_query_parses_as_promql(tmp_path: Path):
    """Each panel query, as a recording rule, through promtool's PromQL parser."""
    rules = []
    for index, query in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"unknown Grafana variable in {query}"
        rules.append({"record": f"dashboard:query_{index}", "expr": query})
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool("promtool"), "check", "rules", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# -- the rules -----------------------------------------------------------------------------------


def test_every_required_alert_exists_with_severity_and_runbook():
    alerts = {rule["alert"]: rule for rule in alert_rules() if "alert" in rule}
    assert alerts.keys() >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), name


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yaml").read_text(encoding="utf-8"))
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules() if "alert" in rule}
    assert alerts <= firing, f"no firing case for {sorted(alerts - firing)}"
    assert alerts <= quiet, f"no quiet case for {sorted(alerts - quiet)}"


def test_the_interval_constant_is_the_cli_default():
    record = next(r for r in alert_rules() if r.get("record") == "fleet:reconcile_interval_seconds")
    seconds = float(re.fullmatch(r"vector\((\d+)\)", record["expr"]).group(1))
    default = build_parser().parse_args(["run", "desired-state"]).interval
    assert seconds == default
    # The literal windows written for three intervals say the same.
    failing = next(r for r in alert_rules() if r.get("alert") == "FleetReconcileFailing")
    assert f"[{int(3 * default // 60)}m]" in failing["expr"]


def test_alerts_and_dashboard_use_only_metrics_the_controller_exports():
    exported = exported_names()
    used = fleet_names((PROMETHEUS / "alerts.yaml").read_text(encoding="utf-8"))
    used |= fleet_names(" ".join(dashboard_queries()))
    assert len(used) >= 15
    unknown = sorted(name for name in used if name not in exported)
    assert not unknown, f"not exported by controller/observability/metrics.py: {unknown}"
    # The one non-fleet series a rule relies on (uptime for FleetReconcileStale).
    assert "process_start_time_seconds" in Metrics(process_metrics=True).text()


def test_the_name_check_compares_whole_names():
    exported = exported_names()
    assert "fleet_drifted_resources" in exported
    assert "fleet_drifted_resource" not in exported  # a prefix of a real name is not a name
    assert "fleet_reconcile_duration_seconds_bucket" in exported  # histogram series, from text


# -- the dashboard -------------------------------------------------------------------------------


def test_dashboard_is_an_importable_grafana_dashboard():
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_covers_what_operators_watch():
    used = fleet_names(" ".join(dashboard_queries()))
    for needed in [
        "fleet_drifted_resources",
        "fleet_reconciles_total",
        "fleet_reconcile_duration_seconds_bucket",
        "fleet_aws_api_calls_total",
        "fleet_aws_api_retries_total",
        "fleet_association_instances",
        "fleet_activation_expiry_timestamp_seconds",
        "fleet_workspaces_not_onboarded",
        "fleet_managed_instance_quota",
        "fleet_managed_instances",
        "fleet_refused_resources",
        "fleet_resources",
        "fleet_aws_clock_skew_seconds",
        "fleet_enrollment_requests_total",
        "fleet_enrollment_activations",
        "fleet_impostor_instances",
        "fleet_events_received_total",
        "fleet_targeted_reconciles_total",
        "fleet_targeted_reconcile_duration_seconds_bucket",
        "fleet_cache_age_seconds",
        "fleet_relist_duration_seconds_bucket",
        "fleet_cache_pinned_resources",
    ]:
        assert needed in used, f"the dashboard shows nothing of {needed}"
