"""Promises of the first ten minutes that must never break, each held where the operator sees it.

A secret-named key is masked in a created resource's plan even inside JSON held in a string (SSM
parameters carry their values so); apply refuses a manifest still holding export's placeholder,
exit 1, writing none of it and the rest all the same; a busy port stops ``run`` before anything
starts (no repository cloned), naming its flag, the enrollment port too; status gauges tell the
state after the pass's writes. Each is a mutant in ``benchmarks/mutants.yaml`` (``first10-``).
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from controller.cli import main
from controller.contract import Action, FieldChange, Operation, Plan
from controller.engine.render import MASKED, render_json, render_markdown, render_text
from controller.observability.metrics import Metrics
from tests.engine.helpers import cli
from tests.runtime.helpers import activation, activations_dir, reconciler, sample


@contextmanager
def busy_port() -> Iterator[int]:
    """A loopback port someone else is listening on, for as long as the block lasts."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_secret_key_inside_json_in_a_string_is_masked_in_every_format():
    parameters = json.dumps({"user": ["svc-install"], "servicePassword": ["pw-Kq81-not-shown"]})
    plan = Plan(
        operations=[
            Operation(
                kind="Association",
                name="install",
                resource="install",
                action=Action.CREATE,
                payload=None,
                changes=(FieldChange("Parameters", None, parameters),),
            )
        ]
    )
    text, markdown, document = render_text(plan), render_markdown(plan), render_json(plan)
    assert "svc-install" in text and "svc-install" in markdown  # the rest is shown, as YAML
    for rendered in (text, markdown):
        assert "pw-Kq81-not-shown" not in rendered, rendered
        assert f"servicePassword: {MASKED}" in rendered, rendered
    # JSON output keeps the value as AWS takes it; the field is not secret-named, so it shows the
    # string: the text and Markdown plans are what reviewers read.
    assert json.loads(document)["operations"][0]["changes"][0]["field"] == "Parameters"


def test_apply_refuses_a_manifest_holding_a_placeholder_and_applies_the_rest(
    sandbox, tmp_path, capsys
):
    directory = activations_dir(tmp_path / "desired", "alpha")
    (directory / "beta.yaml").write_text(
        activation("beta").replace("SSMServiceRole", "REPLACE-ME-role"), encoding="utf-8"
    )
    assert main(["validate", str(directory)]) == 0  # valid, with the placeholder listed
    assert "REPLACE-ME" in capsys.readouterr().out

    code = cli(sandbox, "apply", str(directory))
    assert code == 1
    ssm = sandbox.client("ssm")
    names = {
        tag["Value"]
        for a in ssm.describe_activations()["ActivationList"]
        for tag in a.get("Tags", [])
        if tag["Key"] == "fleet-controller/manifest"
    }
    assert names == {"Activation/alpha"}  # beta, holding the placeholder, was never created
    parameters = {p["Name"] for p in ssm.describe_parameters()["Parameters"]}
    assert "/fleet-controller/activations/beta" not in parameters
    assert "/fleet-controller/activations/alpha" in parameters


def test_a_busy_metrics_port_stops_run_before_the_repository_is_cloned(tmp_path, capsys):
    repository = tmp_path / "repository"
    activations_dir(repository, "alpha")
    for command in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "alpha"],
    ):
        subprocess.run(["git", *command], cwd=repository, check=True)
    clone = tmp_path / "clone"
    with busy_port() as port:
        code = main(
            ["run", "--git-url", str(repository), "--git-ref", "main", "--git-dir", str(clone),
             "--sandbox", "--metrics-host", "127.0.0.1", "--metrics-port", str(port),
             "--log-format", "json"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: --metrics-port {port}: ") and err.count("\n") == 1, err
    assert not (clone / "repository.git").exists()  # nothing fetched, nothing started


def test_a_busy_enroll_port_names_its_flag_before_anything_starts(tmp_path, capsys):
    directory = activations_dir(tmp_path / "desired", "alpha")
    with busy_port() as port:
        code = main(
            ["run", str(directory), "--sandbox", "--metrics-port", "0",
             "--enroll-host", "127.0.0.1", "--enroll-port", str(port), "--log-format", "json"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"error: --enroll-port {port}: 127.0.0.1:{port} is already in use (another"
        " fleet-controller?); choose another port\n"
    )


def test_status_gauges_tell_the_state_after_the_passs_writes(sandbox, tmp_path):
    directory = activations_dir(tmp_path / "desired", "alpha", "beta")
    from controller.manifests import load_desired_state

    metrics = Metrics(controller_id="runtime-test")
    _, result = reconciler(sandbox.endpoint, metrics).reconcile(load_desired_state(directory))
    assert result.ok and len(result.applied) >= 2  # the first pass created both
    assert sample(metrics, "fleet_managed_resources", target="default", kind="Activation") == 2
    assert (
        sample(metrics, "fleet_resources", target="default", kind="Activation", health="Missing")
        or 0
    ) == 0


def test_export_never_writes_an_activation_code(sandbox, tmp_path, capsys):
    directory = activations_dir(tmp_path / "desired", "alpha")
    assert cli(sandbox, "apply", str(directory)) == 0
    published = sandbox.client("ssm").get_parameter(
        Name="/fleet-controller/activations/alpha", WithDecryption=True
    )["Parameter"]["Value"]
    code = json.loads(published)["code"]
    assert len(code) >= 20  # a real code, so "not in" below means something
    out = tmp_path / "adopted" / "fleet.yaml"
    capsys.readouterr()
    assert cli(sandbox, "export", "--output", str(out)) == 0
    said = capsys.readouterr()
    exported = out.read_text(encoding="utf-8")
    assert "kind: Activation" in exported and "alpha" in exported  # it was exported
    for text in (exported, said.out, said.err):
        assert code not in text
