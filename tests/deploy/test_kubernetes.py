"""deploy/kubernetes validates against the Kubernetes schemas, offline, and hangs together.

Core objects go through kubernetes-validate in strict mode (unknown fields are errors) for
several Kubernetes versions. ServiceMonitor and PrometheusRule are custom resources whose schemas
are not in the core set: they are checked against the subset of their CRD schemas
(monitoring.coreos.com/v1) written out below, strictly (every field this deployment may use, no
other), and the PrometheusRule must carry exactly deploy/prometheus/alerts.yaml (which promtool
checks). Then the pieces must agree with each other and with the controller: the container's
arguments parse with the real CLI, ports and selectors line up, the probes hit the real paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from controller.aws.targets import load_targets
from controller.cli import build_parser
from tests.deploy import rules_sync

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ("1.29.0", "1.31.0", "1.33.0")
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}

DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}},
}
# Subsets of prometheus-operator's CRD schemas (monitoring.coreos.com/v1): the field names, types,
# required fields and patterns of the parts a deployment of fleet-controller uses.
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "selector": LABEL_SELECTOR,
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "any": {"type": "boolean"},
                            "matchNames": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "jobLabel": {"type": "string"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "targetPort": {"type": ["string", "integer"]},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                                "interval": {"type": "string", "pattern": DURATION},
                                "scrapeTimeout": {"type": "string", "pattern": DURATION},
                                "honorLabels": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "interval": {"type": "string", "pattern": DURATION},
                                "limit": {"type": "integer"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["expr"],
                                        "additionalProperties": False,
                                        "oneOf": [
                                            {"required": ["alert"]},
                                            {"required": ["record"]},
                                        ],
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": ["string", "integer"]},
                                            "for": {"type": "string", "pattern": DURATION},
                                            "keep_firing_for": {
                                                "type": "string",
                                                "pattern": DURATION,
                                            },
                                            "labels": STRING_MAP,
                                            "annotations": STRING_MAP,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def objects() -> dict[str, dict[str, Any]]:
    """Every object by kind (each kind appears once in this deployment)."""
    found: dict[str, dict[str, Any]] = {}
    for path in manifest_files():
        for document in documents(path):
            assert document["kind"] not in found, f"two {document['kind']} objects"
            found[document["kind"]] = document
    return found


def container() -> dict[str, Any]:
    containers = objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# -- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_validate_strictly_against_the_kubernetes_schemas(version: str):
    checked = 0
    for path in manifest_files():
        for document in documents(path):
            if document["kind"] in CUSTOM_KINDS:
                continue
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path.name} ({document['kind']}) against {version}: {error}")
            checked += 1
    assert checked >= 6  # Namespace, ServiceAccount, ConfigMap, Deployment, Service, PDB


def test_the_validator_rejects_what_it_should():
    """Strict mode is what catches a misspelt field: make sure it is on and working."""
    deployment = objects()["Deployment"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGett"] = probe.pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("kind", sorted(CUSTOM_KINDS))
def test_custom_resources_match_their_crd_structure(kind: str):
    schema = CRD_SCHEMAS[kind]
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(objects()[kind])
    broken = yaml.safe_load(yaml.safe_dump(objects()[kind]))
    broken["spec"]["endpoint" if kind == "ServiceMonitor" else "group"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_prometheus_rule_is_exactly_the_shipped_alert_rules():
    rule = objects()["PrometheusRule"]
    alerts = yaml.safe_load(rules_sync.ALERTS.read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == alerts["groups"]
    assert rules_sync.PROMETHEUS_RULE.read_text(encoding="utf-8") == rules_sync.rendered(), (
        "prometheusrule.yaml is stale: run `python -m tests.deploy.rules_sync`"
    )


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    image = container()["image"].split(":")[0]
    assert [i["name"] for i in kustomization["images"]] == [image]


# -- the pieces agree ----------------------------------------------------------------------------


def test_everything_lives_in_one_namespace():
    namespace = objects()["Namespace"]["metadata"]["name"]
    for kind, document in objects().items():
        if kind != "Namespace":
            assert document["metadata"]["namespace"] == namespace, kind


def test_container_arguments_parse_with_the_real_cli():
    args = build_parser().parse_args(container()["args"])
    assert args.command == "run"
    port = next(p for p in container()["ports"] if p["name"] == "http")
    assert args.metrics_port == port["containerPort"]
    assert args.interval == 300  # what alerts.yaml's fleet:reconcile_interval_seconds assumes
    mounts = {m["mountPath"] for m in container()["volumeMounts"]}
    assert Path(args.git_dir).parent.as_posix() in mounts, "the checkout needs a writable volume"
    assert Path(args.targets).parent.as_posix() in mounts


def test_two_replicas_with_leases_and_the_webhook_secret_from_a_secret():
    deployment = objects()["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    env = {e["name"]: e for e in container()["env"]}
    assert env["FLEET_LEASE_TABLE"]["value"]
    assert "secretKeyRef" in env["FLEET_WEBHOOK_SECRET"]["valueFrom"]
    assert "value" not in env["FLEET_WEBHOOK_SECRET"]


def test_probes_resources_and_security_context():
    c = container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] == "http"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    security = c["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    pod = objects()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in c["volumeMounts"]:
        if not mount.get("readOnly"):
            assert "emptyDir" in volumes[mount["name"]], f"{mount['mountPath']} must be scratch"


def test_probe_paths_are_served_by_the_controller():
    source = (ROOT / "controller" / "observability" / "http.py").read_text(encoding="utf-8")
    for path in ("/healthz", "/readyz", "/metrics"):
        assert f'"{path}"' in source, f"the observability server has no {path} route"


def test_service_account_has_an_irsa_role_and_the_pods_use_it():
    account = objects()["ServiceAccount"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", role)
    pod = objects()["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_service_and_service_monitor_reach_the_pods():
    pod_labels = objects()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = objects()["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port = service["spec"]["ports"][0]
    assert port["targetPort"] in {p["name"] for p in container()["ports"]}
    monitor = objects()["ServiceMonitor"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == port["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    budget = objects()["PodDisruptionBudget"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_targets_config_loads_with_the_real_targets_loader(tmp_path: Path):
    config = objects()["ConfigMap"]
    volumes = objects()["Deployment"]["spec"]["template"]["spec"]["volumes"]
    mounted = next(v for v in volumes if "configMap" in v)
    assert mounted["configMap"]["name"] == config["metadata"]["name"]
    args = build_parser().parse_args(container()["args"])
    assert args.targets.name in config["data"], "--targets names a key of the ConfigMap"
    path = tmp_path / args.targets.name
    path.write_text(config["data"][args.targets.name], encoding="utf-8")
    targets = load_targets(path)
    assert len(targets) >= 2
    assert any(t.role_arn for t in targets) and any(not t.role_arn for t in targets)


def test_the_deployment_comment_shows_how_to_create_the_secret():
    text = (K8S / "deployment.yaml").read_text(encoding="utf-8")
    env = next(e for e in container()["env"] if e["name"] == "FLEET_WEBHOOK_SECRET")
    ref = env["valueFrom"]["secretKeyRef"]
    comment = " ".join(
        line.lstrip("# ").rstrip("\\ ") for line in text.splitlines() if line.startswith("#")
    )
    command = comment[comment.index("kubectl") :]
    assert f"create secret generic {ref['name']} --from-literal={ref['key']}=" in command
