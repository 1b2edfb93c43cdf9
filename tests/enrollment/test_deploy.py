"""The enrollment endpoint's deployment: Kubernetes overlay and ECS load balancer, checked offline.

The Kubernetes overlay is rendered by the real ``kubectl kustomize`` (over the base in
``deploy/kubernetes``) and every core object validated strictly against the Kubernetes schemas;
the ECS template's enrollment resources are read as cfn-lint decodes them (cfn-lint itself runs in
tests/deploy/test_ecs.py). Then the pieces must agree with the controller: the arguments parse
with the real CLI, ports and selectors line up, the health check is the endpoint's, and only the
WorkSpaces' range may reach the enrollment port.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cfnlint.decode import decode

from controller.cli import build_parser
from controller.service.enrollment import protocol

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "kubernetes-enrollment"
TEMPLATE = ROOT / "deploy" / "ecs" / "fleet-controller.yaml"
LBC = "service.beta.kubernetes.io/aws-load-balancer-"


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (Debian's kubectl package, .ci/system-packages) renders the overlay"
    result = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in rendered() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def controller_container() -> dict[str, Any]:
    (container,) = named("Deployment", "fleet-controller")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("version", ("1.29.0", "1.33.0"))
def test_the_overlay_renders_and_validates_strictly(version: str):
    checked = 0
    for document in rendered():
        if document["kind"] in {"ServiceMonitor", "PrometheusRule"}:
            continue  # custom resources: tests/deploy/test_kubernetes.py checks the base's
        kubernetes_validate.validate(document, version, strict=True)
        checked += 1
    assert checked >= 8


def test_the_controller_listens_for_enrollment_on_the_port_the_service_targets():
    args = build_parser().parse_args(controller_container()["args"])
    ports = {p["name"]: p["containerPort"] for p in controller_container()["ports"]}
    assert args.enroll_port == ports["enroll"] and args.metrics_port == ports["http"]
    assert args.enroll_trusted_proxy == []  # the client address arrives preserved: no proxy header
    service = named("Service", "fleet-controller-enrollment")
    pod_labels = named("Deployment", "fleet-controller")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "enroll" and port["port"] == 443


def test_the_load_balancer_is_internal_ends_tls_and_preserves_the_client_address():
    service = named("Service", "fleet-controller-enrollment")
    annotations = service["metadata"]["annotations"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert annotations[LBC + "scheme"] == "internal"
    assert annotations[LBC + "nlb-target-type"] == "ip"
    assert annotations[LBC + "target-group-attributes"] == "preserve_client_ip.enabled=true"
    assert annotations[LBC + "ssl-cert"].startswith("arn:aws:acm:")
    assert annotations[LBC + "ssl-ports"] == "443"
    assert annotations[LBC + "healthcheck-path"] == protocol.HEALTH_PATH
    for cidr in service["spec"]["loadBalancerSourceRanges"]:
        assert ipaddress.ip_network(cidr).prefixlen > 0, "the whole internet may not enroll"


def test_the_network_policy_opens_the_enrollment_port_to_the_workspaces_only():
    policy = named("NetworkPolicy", "fleet-controller-enrollment")
    pod_labels = named("Deployment", "fleet-controller")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules = {rule["ports"][0]["port"]: rule for rule in policy["spec"]["ingress"]}
    enroll = rules["enroll"]
    sources = [peer["ipBlock"]["cidr"] for peer in enroll["from"]]
    assert sources and all(ipaddress.ip_network(c).prefixlen > 0 for c in sources)
    service = named("Service", "fleet-controller-enrollment")
    assert set(service["spec"]["loadBalancerSourceRanges"]) <= set(sources)
    assert "from" not in rules["http"]  # metrics, probes and the webhook stay as they were


# -- ECS -------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


@cache
def ecs() -> dict[str, Any]:
    loaded, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return dict(plain(loaded)["Resources"])


def test_ecs_runs_the_listener_behind_an_internal_tls_load_balancer():
    (container,) = ecs()["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    command = [c if isinstance(c, str) else f"<{c['Ref']}>" for c in container["Command"]]
    args = build_parser().parse_args(command)
    ports = {p["Name"]: p["ContainerPort"] for p in container["PortMappings"]}
    assert args.enroll_port == ports["enroll"]
    balancer = ecs()["EnrollmentLoadBalancer"]["Properties"]
    assert (balancer["Type"], balancer["Scheme"]) == ("network", "internal")
    listener = ecs()["EnrollmentListener"]["Properties"]
    assert (listener["Protocol"], listener["Port"]) == ("TLS", 443)
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "EnrollmentCertificateArn"}}]
    group = ecs()["EnrollmentTargetGroup"]["Properties"]
    assert (group["TargetType"], group["Protocol"], group["Port"]) == (
        "ip",
        "TCP",
        args.enroll_port,
    )
    assert group["HealthCheckPath"] == protocol.HEALTH_PATH
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["preserve_client_ip.enabled"] == "true"
    (attached,) = ecs()["Service"]["Properties"]["LoadBalancers"]
    assert attached["ContainerPort"] == args.enroll_port
    assert attached["TargetGroupArn"] == {"Ref": "EnrollmentTargetGroup"}


def test_ecs_security_groups_let_only_the_workspaces_in():
    balancer = ecs()["EnrollmentLoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(r["FromPort"], r["CidrIp"]) for r in balancer] == [(443, {"Ref": "WorkSpacesCidr"})]
    tasks = ecs()["EnrollmentTaskSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    sources = [r.get("CidrIp") or r.get("SourceSecurityGroupId") for r in tasks]
    assert all(r["FromPort"] == r["ToPort"] == 8443 for r in tasks)
    assert sources == [{"Ref": "WorkSpacesCidr"}, {"Ref": "EnrollmentLoadBalancerSecurityGroup"}]


def test_enrollment_needs_no_iam_action_the_policies_do_not_already_grant():
    """Enrollment calls only actions deploy/iam grants already (test_iam.py keeps the policies
    equal to the code's calls); the example's role is the one the policy may pass to SSM."""
    from controller.manifests import load_desired_state
    from tests.deploy.test_iam import PLACEHOLDERS, code_scan, granted_actions, required_actions

    needed = required_actions(code_scan())
    enrollment_sites = {
        action for action, sites in needed.items() if any("enrollment" in site for site in sites)
    }
    assert enrollment_sites >= {"ssm:CreateActivation", "ssm:DeregisterManagedInstance"}
    assert enrollment_sites <= set(granted_actions())
    for manifest in load_desired_state(ROOT / "desired-state").of_kind("Enrollment"):
        assert manifest.spec.iam_role == PLACEHOLDERS["ActivationRoleName"]
