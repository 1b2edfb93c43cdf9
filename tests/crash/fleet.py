"""A small fleet, the example desired state, the controller as a process, and a live snapshot.

The fleet is the demo scenario's (two lines of business with their tags, the example packages'
bucket and install effects) scaled to six WorkSpaces, registering through the parameter the
example Activation publishes. The controller runs as ``python -m controller.cli apply`` against
the sandbox's endpoint, as in production; earlier phases that no crash is armed in may run
in-process through ``controller.cli.main`` (the same code, without a process start).

``snapshot`` reads the live state back through boto3 and the admin API and normalises what is
random by nature (activation, instance, association and WorkSpace ids; dates), so a run that was
killed and restarted can be compared with a clean one for equality.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from controller.cli import main
from controller.contract.crashpoints import CRASH_EXIT_CODE, ENV
from controller.detection import document as detection
from controller.kinds.association import normalize
from fleet_sandbox.client import SandboxClient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "desired-state"
CONTROLLER_ID = "crash-test"
PARAMETER = "/fleet-controller/activations/workspaces"
BUCKET = "fleet-controller-packages-example"
OWNER = "fleet-controller/owner"
WORKSPACE_ID_TAG = "fleet-controller/workspace-id"
FINANCE, ENGINEERING = 4, 2
MAX_PASSES = 5  # a restarted controller converges within this many passes, or the test fails


# -- the sandbox over HTTP ---------------------------------------------------------------------


@dataclass
class Target:
    """One sandbox region: boto3 clients and the admin API, as tests/conftest's handle gives."""

    endpoint: str
    region: str = "us-east-1"
    admin: SandboxClient = field(init=False)

    def __post_init__(self) -> None:
        self.admin = SandboxClient(self.endpoint, region=self.region)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def admin_get(self, path: str, **query: str) -> dict[str, Any]:
        encoded = urlencode({**query, "region": self.region})
        with urllib.request.urlopen(f"{self.endpoint}/_sandbox/{path}?{encoded}") as response:
            return dict(json.loads(response.read()))


# -- the fleet and the desired state -------------------------------------------------------------


def demo_scenario() -> dict[str, Any]:
    """The embedded demo scenario at six WorkSpaces, registering through the example parameter."""
    text = resources.files("fleet_sandbox").joinpath("scenarios", "demo.yaml")
    data: dict[str, Any] = yaml.safe_load(text.read_text(encoding="utf-8"))
    finance, engineering = data["workspaces"]
    finance["count"], engineering["count"] = FINANCE, ENGINEERING
    data["registration"] = {"parameterName": PARAMETER}
    return data


def create_fleet(target: Target) -> None:
    target.admin.post("scenario", demo_scenario())


def copy_example(destination: Path) -> Path:
    shutil.copytree(EXAMPLE, destination)
    return destination


def update_package(desired: Path) -> None:
    """A new AcmeViewer: 3.2.1 with a patched MSI, keeping one version (the old one is pruned)."""
    directory = desired / "packages" / "acme-viewer"
    manifest = directory / "package.yaml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace("version: 3.2.0", "version: 3.2.1").replace(
        "keepVersions: 5", "keepVersions: 1"
    )
    assert "3.2.1" in text and "keepVersions: 1" in text
    manifest.write_text(text, encoding="utf-8")
    (directory / "AcmeViewer.msi").write_bytes(
        (directory / "AcmeViewer.msi").read_bytes() + b"\npatch 3.2.1\n"
    )


def rotate_activation(desired: Path) -> None:
    """A changed description: activations are immutable, so this is a rotation."""
    path = desired / "activation.yaml"
    text = path.read_text(encoding="utf-8")
    changed = text.replace(
        "description: Hybrid activation for Amazon WorkSpaces",
        "description: Hybrid activation for Amazon WorkSpaces (rotated)",
    )
    assert changed != text
    path.write_text(changed, encoding="utf-8")


def drift(target: Target) -> None:
    """Hand edits the next pass must repair: one WorkSpace's tags changed (a value changed and a
    copied key removed: one instance needs AddTags and RemoveTags), and an owned association's
    manifest tag overwritten."""
    workspaces = target.client("workspaces")
    finance = sorted(
        (w for w in workspaces.describe_workspaces()["Workspaces"] if w["UserName"] == "fin0001"),
        key=lambda w: w["WorkspaceId"],
    )[0]["WorkspaceId"]
    workspaces.create_tags(ResourceId=finance, Tags=[{"Key": "CostCenter", "Value": "4999"}])
    workspaces.delete_tags(ResourceId=finance, TagKeys=["App-Excel"])
    ssm = target.client("ssm")
    [association] = [
        a
        for a in ssm.list_associations()["Associations"]
        if a.get("AssociationName") == "install-contoso-notes"
    ]
    ssm.add_tags_to_resource(
        ResourceType="Association",
        ResourceId=association["AssociationId"],
        Tags=[{"Key": "fleet-controller/manifest", "Value": "Association/someone-else"}],
    )


OLD_EVALUATOR = json.dumps(
    {
        "schemaVersion": "2.2",
        "description": "fleet-controller detection evaluator (an older controller version)",
        "mainSteps": [
            {
                "action": "aws:runPowerShellScript",
                "name": "evaluate",
                "inputs": {"runCommand": ["Write-Output 'old evaluator'"]},
            }
        ],
    }
)


def seed_old_evaluator(target: Target) -> None:
    """The detection document as an older controller version left it: owned, other content."""
    target.client("ssm").create_document(
        Name=detection.document_name(CONTROLLER_ID),
        Content=OLD_EVALUATOR,
        DocumentType="Command",
        DocumentFormat="JSON",
        Tags=[
            {"Key": OWNER, "Value": CONTROLLER_ID},
            {"Key": "fleet-controller/manifest", "Value": "Association/detection-document"},
        ],
    )


# -- the controller ------------------------------------------------------------------------------


@dataclass
class Pass:
    code: int
    stdout: str
    stderr: str

    @property
    def converged(self) -> bool:
        """The pass found nothing to change (apply prints the plan first)."""
        return self.code == 0 and "No changes." in self.stdout


def cli_args(command: str, desired: Path, target: Target, *extra: str) -> list[str]:
    return [
        command,
        str(desired),
        "--endpoint-url",
        target.endpoint,
        "--region",
        target.region,
        "--controller-id",
        CONTROLLER_ID,
        "--log-format",
        "json",
        *extra,
    ]


def run_process(
    command: str, desired: Path, target: Target, crash_at: str | None = None, *extra: str
) -> Pass:
    """``fleet-controller <command>`` as a process; ``crash_at`` arms the crash switch."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    }
    env.pop("AWS_PROFILE", None)
    env.pop(ENV, None)
    if crash_at:
        env[ENV] = crash_at
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", *cli_args(command, desired, target, *extra)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    return _echoed(Pass(done.returncode, done.stdout, done.stderr))


def run_in_process(command: str, desired: Path, target: Target, *extra: str) -> Pass:
    """The same CLI, called in this process (no crash switch: it is read at import)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(cli_args(command, desired, target, *extra))
    return _echoed(Pass(code, out.getvalue(), err.getvalue()))


def _echoed(result: Pass) -> Pass:
    """Pass the controller's output on to pytest's capture, where the suite's secret scan
    reads it (and a failing test shows it)."""
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result


def plan_json(desired: Path, target: Target) -> dict[str, Any]:
    """What the next pass would do, as ``plan --format json`` prints it."""
    result = run_in_process("plan", desired, target, "--format", "json")
    assert result.code == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


Runner = Callable[[str, Path, Target], Pass]


def converge(desired: Path, target: Target, run: Runner = run_in_process) -> list[Pass]:
    """Apply until a pass finds nothing to change; at most MAX_PASSES passes."""
    passes: list[Pass] = []
    while len(passes) < MAX_PASSES:
        passes.append(run("apply", desired, target))
        if passes[-1].converged:
            return passes
    summary = "\n---\n".join(
        f"exit {p.code}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}" for p in passes
    )
    raise AssertionError(f"not converged after {MAX_PASSES} passes:\n{summary}")


def crashed_at(result: Pass, point: str) -> bool:
    return result.code == CRASH_EXIT_CODE and result.stderr.rstrip().endswith(
        f"fleet-controller: crash point {point}"
    )


# -- phases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """What changes before the controller's passes, and what the fleet does after them."""

    name: str
    before: Callable[[Target, Path], None] = lambda target, desired: None
    after: Callable[[Target], None] = lambda target: None


def _boot(target: Target) -> None:
    target.admin.post("fleet/boot", {})


def _run_agents(target: Target) -> None:
    target.admin.post("agent/run", {})


PHASES: dict[str, Phase] = {
    # Activation, packages (uploads, documents), the detection document and associations.
    "create": Phase("create"),
    # The fleet registers; TagSync copies tags; the associations now reach instances and run.
    "tag": Phase("tag", before=lambda target, desired: _boot(target), after=_run_agents),
    # A package changes: new version, promotion, pruning, its "latest" associations started.
    "update": Phase(
        "update", before=lambda target, desired: update_package(desired), after=_run_agents
    ),
    # Hand edits: instance tags to add and remove, an association's manifest tag to repair.
    "drift": Phase("drift", before=lambda target, desired: drift(target)),
    # The Activation's spec changes: a new activation is created and published.
    "rotate": Phase("rotate", before=lambda target, desired: rotate_activation(desired)),
}


def _fleet_with_old_evaluator(target: Target) -> None:
    create_fleet(target)
    seed_old_evaluator(target)


FLOWS: dict[str, tuple[Callable[[Target], None], tuple[str, ...]]] = {
    "main": (create_fleet, ("create", "tag", "update", "drift", "rotate")),
    # The detection document exists with an older evaluator: the first pass versions it.
    "old-evaluator": (_fleet_with_old_evaluator, ("create",)),
}


def run_flow(target: Target, desired: Path, flow: str, until: str | None = None) -> None:
    """Set the flow's fleet up and run its phases (each converged) up to ``until`` (excluded)."""
    setup, phases = FLOWS[flow]
    setup(target)
    for name in phases:
        if name == until:
            return
        phase = PHASES[name]
        phase.before(target, desired)
        converge(desired, target)
        phase.after(target)


# -- the live state, normalised -------------------------------------------------------------------


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def snapshot(target: Target) -> dict[str, Any]:
    """Everything the controller owns or changes, with ids that are random by nature replaced.

    Checks on the way (each failure is a duplicate or an orphan): the parameter's JSON id is a
    live owned activation; exactly one activation is published; every other owned activation is
    older than it (a predecessor within its grace period, never an unpublished newcomer); one
    association per name; every S3 object a live package version uses exists.
    """
    ssm, s3 = target.client("ssm"), target.client("s3")
    users = _workspace_users(target)
    activations, published = _activations(ssm)
    associations = _associations(ssm)
    documents, used_keys = _documents(ssm)
    stored = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    missing = sorted(set(used_keys) - set(stored))
    assert not missing, f"package versions reference S3 objects that do not exist: {missing}"
    instances = _instances(target, users, published)
    return {
        "activations": activations,
        "documents": documents,
        "s3": stored,
        "associations": associations,
        "instances": instances,
    }


def _workspace_users(target: Target) -> dict[str, str]:
    found: dict[str, str] = {}
    for page in target.client("workspaces").get_paginator("describe_workspaces").paginate():
        for workspace in page["Workspaces"]:
            found[workspace["WorkspaceId"]] = workspace["UserName"]
    return found


def _activations(ssm: Any) -> tuple[list[dict[str, Any]], str]:
    live = [
        a
        for page in ssm.get_paginator("describe_activations").paginate()
        for a in page["ActivationList"]
    ]
    owned = [a for a in live if _tags(a.get("Tags")).get(OWNER) == CONTROLLER_ID]
    value = json.loads(ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"])
    by_id = {a["ActivationId"]: a for a in owned}
    assert value["id"] in by_id, f"the parameter names {value['id']}, no live owned activation"
    current = by_id[value["id"]]
    described = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [PARAMETER]}]
    )["Parameters"][0]
    assert described["Description"].startswith(f"fleet-controller: activation {value['id']} ")
    for other in owned:
        if other is not current:
            assert other["CreatedDate"] < current["CreatedDate"], (
                f"owned activation {other['ActivationId']} is newer than the published one and"
                " was never published: an orphan"
            )
    normalised = [
        {
            "published": a is current,
            "iamRole": a["IamRole"],
            "registrationLimit": a["RegistrationLimit"],
            "registrations": a.get("RegistrationsCount", 0),
            "description": a.get("Description"),
            "defaultInstanceName": a.get("DefaultInstanceName"),
            "expired": a.get("Expired", False),
            "tags": _tags(a.get("Tags")),
        }
        for a in sorted(owned, key=lambda a: a["CreatedDate"])
    ]
    return normalised, current["ActivationId"]


def _associations(ssm: Any) -> dict[str, dict[str, Any]]:
    live = [
        a
        for page in ssm.get_paginator("list_associations").paginate()
        for a in page["Associations"]
    ]
    names = Counter(a.get("AssociationName") for a in live)
    duplicated = sorted(str(name) for name, count in names.items() if count > 1)
    assert not duplicated, f"more than one association named {duplicated}"
    found: dict[str, dict[str, Any]] = {}
    for item in live:
        described = ssm.describe_association(AssociationId=item["AssociationId"])
        description = described["AssociationDescription"]
        tags = ssm.list_tags_for_resource(
            ResourceType="Association", ResourceId=item["AssociationId"]
        )["TagList"]
        found[str(item.get("AssociationName"))] = {
            "request": normalize(description),
            "version": description["AssociationVersion"],
            "tags": _tags(tags),
        }
    return found


def _documents(ssm: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    documents: dict[str, dict[str, Any]] = {}
    used: list[str] = []
    listed = [
        d
        for page in ssm.get_paginator("list_documents").paginate(
            Filters=[{"Key": f"tag:{OWNER}", "Values": [CONTROLLER_ID]}]
        )
        for d in page["DocumentIdentifiers"]
    ]
    for item in listed:
        name = item["Name"]
        versions = ssm.list_document_versions(Name=name)["DocumentVersions"]
        rows = []
        for version in versions:
            got = ssm.get_document(Name=name, DocumentVersion=version["DocumentVersion"])
            attachments = sorted((a["Name"], a["Hash"]) for a in got.get("AttachmentsContent", []))
            used += [_key(a["Url"]) for a in got.get("AttachmentsContent", [])]
            rows.append(
                {
                    "number": version["DocumentVersion"],
                    "name": version.get("VersionName"),
                    "default": version["IsDefaultVersion"],
                    "content": _content_id(got["Content"]),
                    "attachments": attachments,
                }
            )
        described = ssm.describe_document(Name=name)["Document"]
        documents[name] = {
            "type": described["DocumentType"],
            "tags": _tags(described.get("Tags")),
            "versions": rows,
        }
    return documents, used


def _content_id(content: str) -> str:
    """The detection document's content as 'current'/'other'; a package manifest as is."""
    if content == detection.document_content():
        return "current evaluator"
    if content == OLD_EVALUATOR:
        return "old evaluator"
    return content


def _key(url: str) -> str:
    """The object key of an attachment URL (https://bucket.s3.amazonaws.com/key or s3://b/key)."""
    return urlsplit(url).path.lstrip("/")


def _instances(target: Target, users: dict[str, str], published: str) -> dict[str, dict[str, Any]]:
    """Per WorkSpace (by user name): its managed instance's tags and installed packages."""
    ssm = target.client("ssm")
    found: dict[str, dict[str, Any]] = {}
    for page in ssm.get_paginator("describe_instance_information").paginate():
        for info in page["InstanceInformationList"]:
            instance = info["InstanceId"]
            tags = _tags(
                ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)[
                    "TagList"
                ]
            )
            workspace = tags.get(WORKSPACE_ID_TAG)
            user = users.get(workspace or "", f"unmatched {info.get('ComputerName')}")
            if workspace:
                tags[WORKSPACE_ID_TAG] = f"<workspace of {user}>"
            state = target.admin_get("agent/state", instanceId=instance)
            assert user not in found, f"two managed instances for {user}"
            found[user] = {
                "tags": tags,
                "registeredWithPublished": info.get("ActivationId") == published,
                "packages": state.get("distributorPackages", {}),
            }
    return found


def indent(text: str) -> str:
    return textwrap.indent(text, "    ")
