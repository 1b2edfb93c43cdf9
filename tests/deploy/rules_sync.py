"""deploy/kubernetes/prometheusrule.yaml is deploy/prometheus/alerts.yaml wrapped in a
PrometheusRule. ``python -m tests.deploy.rules_sync`` rewrites it; tests compare the two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"

HEADER = (
    "# Generated from deploy/prometheus/alerts.yaml by `python -m tests.deploy.rules_sync`:\n"
    "# edit the alerts there and regenerate (tests/deploy/test_kubernetes.py compares the two).\n"
)


def prometheus_rule(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "fleet-controller",
            "namespace": "fleet-controller",
            "labels": {
                "app.kubernetes.io/name": "fleet-controller",
                "app.kubernetes.io/component": "alerting-rules",
            },
        },
        "spec": {"groups": groups},
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, the way alerts.yaml writes them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _string)


def rendered() -> str:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    body = yaml.dump(prometheus_rule(groups), Dumper=_BlockDumper, sort_keys=False, width=1000)
    return HEADER + body


if __name__ == "__main__":
    PROMETHEUS_RULE.write_text(rendered(), encoding="utf-8")
    print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")
