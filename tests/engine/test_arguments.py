"""Command-line arguments: a bad value is one clear line on stderr and exit code 1, before anything
runs (hole 8 of issue 9: ``--max-deletes -1``, an empty or 300-character ``--controller-id``
were accepted). Exit 1, not argparse's 2, because ``plan --detailed-exitcode`` 2 means "changes".
"""

from __future__ import annotations

import pytest

from controller.cli import main

BAD = [
    (["plan", "d", "--max-deletes", "-1"], "argument --max-deletes: must be 0 or more, got -1"),
    (["apply", "d", "--max-deletes", "lots"], "argument --max-deletes: expected a whole number"),
    (["plan", "d", "--controller-id", ""], "argument --controller-id: must be 1 to 63 letters"),
    (["plan", "d", "--controller-id", "x" * 300], "(300 characters)"),
    (["apply", "d", "--controller-id", "team/a"], "argument --controller-id: must be 1 to 63"),
    (["apply", "d", "--controller-id=-lead"], "argument --controller-id: must be 1 to 63"),
    (["plan", "d", "--apply-concurrency", "0"], "argument --apply-concurrency: must be 1 to 64"),
    (["plan", "d", "--apply-concurrency", "1000"], "must be 1 to 64, got 1000"),
    (["plan", "d", "--region", "mars-1"], "argument --region: must be an AWS Region name"),
    (["plan", "d", "--endpoint-url", "localhost:4566"], "is not an http(s) URL with a host"),
    (["plan", "d", "--sandbox-workspaces", "-5"], "argument --sandbox-workspaces: must be 0 to"),
    (["validate", "d", "--log-level", "loud"], "argument --log-level: must be one of debug"),
    (["run", "d", "--interval", "0"], "argument --interval: must be more than 0, got 0"),
    (["run", "d", "--interval", "nan"], "argument --interval: expected a finite number"),
    (["run", "d", "--interval", "-5"], "must be more than 0, got -5"),
    (["run", "d", "--jitter", "1"], "argument --jitter: must be at least 0 and less than 1"),
    (["run", "d", "--jitter", "-0.1"], "argument --jitter: must be at least 0"),
    (["run", "d", "--metrics-port", "70000"], "argument --metrics-port: must be 0 to 65535"),
    (["run", "d", "--iterations", "0"], "argument --iterations: must be 1 or more, got 0"),
    (["run", "d", "--git-timeout", "0"], "argument --git-timeout: must be more than 0"),
    (["run", "d", "--webhook-max-bytes", "0"], "argument --webhook-max-bytes: must be 1 to"),
    (["run", "d", "--lease-duration", "-1"], "argument --lease-duration: must be more than 0"),
    (["apply", "d", "--replica-id", "a b"], "argument --replica-id: must be 1 to 128"),
    (["apply", "d", "--lease-target", "_leases"], "argument --lease-target: must be a target"),
    (["sandbox", "--port", "-1"], "argument --port: must be 0 to 65535, got -1"),
    # A burst below one token admits nothing: every enrollment ask crashed its request thread.
    (["run", "d", "--enroll-burst-per-source", "0.5"], "--enroll-burst-per-source: must be at"),
    (["run", "d", "--enroll-burst-total", "0.9"], "argument --enroll-burst-total: must be at"),
    (["run", "d", "--enroll-trusted-proxy", "lb"], "--enroll-trusted-proxy: not an IP network"),
    (["run", "d", "--enroll-trusted-proxy", "10.0.0.0/33"], "not an IP network or address"),
    (["plan", "d", "--format", "yaml"], "argument --format: invalid choice: 'yaml'"),
    # The events flags (issue 12): a queue URL, two durations.
    (["run", "d", "--events-queue-url", "fleet-events"], "--events-queue-url: must be an SQS"),
    (["run", "d", "--events-queue-url", ""], "queue URL such as https://sqs."),
    (["run", "d", "--relist-interval", "0"], "argument --relist-interval: must be more than 0"),
    (["run", "d", "--relist-interval", "inf"], "--relist-interval: expected a finite number"),
    (["run", "d", "--events-batch-seconds", "-1"], "--events-batch-seconds: must be at least 0"),
    (["run", "d", "--events-batch-seconds", "3600"], "and at most 60, got 3600"),
    (["plan"], "the following arguments are required: directory"),
]


@pytest.mark.parametrize(("argv", "says"), BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_a_bad_argument_is_one_line_and_exit_1(argv, says, capsys):
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("fleet-controller"), line
    assert ": error: " in line
    assert says in line, line


def test_a_bad_value_from_the_environment_is_refused_too(monkeypatch, capsys):
    monkeypatch.setenv("FLEET_CONTROLLER_ID", "")
    assert main(["plan", "d"]) == 1
    assert "argument --controller-id: must be 1 to 63" in capsys.readouterr().err


def test_plan_with_detailed_exitcode_never_reports_changes_for_a_bad_argument(capsys):
    assert main(["plan", "d", "--detailed-exitcode", "--max-deletes", "-1"]) == 1


def test_help_still_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out


@pytest.mark.parametrize("controller_id", ["a", "fleet-controller", "prod_eu.1", "x" * 63])
def test_good_controller_ids_pass(controller_id, tmp_path, capsys):
    # validate takes no controller id; plan parses it before looking at the (missing) directory.
    assert main(["plan", str(tmp_path / "nothing"), "--controller-id", controller_id]) == 1
    err = capsys.readouterr().err
    assert "--controller-id" not in err
    assert "desired-state directory does not exist" in err


def _options(parser) -> list:
    import argparse

    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _options(sub)
        elif action.option_strings and action.help is not argparse.SUPPRESS:
            found.append(action)
    return found


def test_help_shows_every_default(capsys):
    """--help of every command says each option's default (argparse's own formatter skipped
    options without help text and so hid --interval's 300 s, for one)."""
    from controller.arguments import DefaultsHelpFormatter
    from controller.cli import build_parser

    for command in ("validate", "plan", "apply", "run", "export", "sandbox"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "(default:" in text
        if command == "run":
            for shown in ("--interval SECONDS a full pass at least this often (default: 300)",
                          "--metrics-port PORT 0: any free port (default: 9100)",
                          "(default: 0.0.0.0)", "--requeue-seconds SECONDS",
                          "--relist-interval SECONDS", "--events-batch-seconds SECONDS"):  # fmt: skip
                assert shown in text, shown
    formatter = DefaultsHelpFormatter("fleet-controller")
    for action in _options(build_parser()):
        # What --help prints for the option (argparse prints nothing, not even the default,
        # for an option without help text: --events-batch-seconds had none).
        shown = formatter._format_action(action)
        assert action.help, action.option_strings
        if action.default in (None, False, [], "==SUPPRESS=="):
            continue  # flags and options without a default: nothing to show
        assert "default" in shown, action.option_strings


def test_a_busy_port_names_its_flag_and_stops_before_anything_starts(tmp_path, capsys):
    import socket

    from tests.runtime.helpers import activations_dir

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(
            ["run", str(activations_dir(tmp_path / "d", "alpha")), "--sandbox",
             "--metrics-host", "127.0.0.1", "--metrics-port", str(port), "--log-format", "json"]
        )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 1
    assert err == (
        f"error: --metrics-port {port}: 127.0.0.1:{port} is already in use (another"
        " fleet-controller?); choose another port\n"
    )  # one line, and nothing else: no sandbox started, no desired state read


def test_the_sandbox_command_names_its_port_flag_too(capsys):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["sandbox", "--port", str(port)]) == 1
    assert capsys.readouterr().err.startswith(f"error: --port {port}: 127.0.0.1:{port} is already")


def test_the_start_up_line_says_where_metrics_listen_as_bound(tmp_path):
    import io
    import json

    from controller.cli import build_parser, service_config
    from controller.observability.logging import configure_logging
    from controller.service.runtime import Service
    from tests.runtime.helpers import activations_dir

    directory = activations_dir(tmp_path / "d", "alpha")
    args = build_parser().parse_args(
        ["run", str(directory), "--metrics-port", "0", "--endpoint-url", "http://127.0.0.1:9",
         "--region", "us-east-1"]
    )  # fmt: skip
    out = io.StringIO()
    configure_logging("json", stream=out)
    try:
        with Service.build(service_config(args)) as service:
            assert service.server is not None
            port = service.server.port
    finally:
        configure_logging("json", "info")
    [serving] = [e for e in map(json.loads, out.getvalue().splitlines()) if e["event"] == "serving"]
    assert serving["metrics_bound"] == f"0.0.0.0:{port}"
    assert serving["summary"].startswith(
        f"metrics at http://127.0.0.1:{port}/metrics (listening on 0.0.0.0:{port}, every interface)"
    )
    assert "first pass now, then every 5 min (±10%)" in serving["summary"]


def test_aws_region_from_the_environment_is_honoured_and_checked(monkeypatch, capsys):
    """boto3 reads only AWS_DEFAULT_REGION, but the deployments in deploy/ (Kubernetes, ECS) and
    the README set AWS_REGION, as the AWS CLI v2 reads it: with only AWS_REGION set, plan said
    "no AWS region configured". A bad value is refused like a bad --region."""
    from controller.cli import build_parser

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert build_parser().parse_args(["plan", "d"]).region == "eu-west-1"
    assert build_parser().parse_args(["plan", "d", "--region", "us-east-2"]).region == "us-east-2"
    monkeypatch.setenv("AWS_REGION", "")
    assert build_parser().parse_args(["plan", "d"]).region is None  # boto3's own then
    monkeypatch.setenv("AWS_REGION", "mars-1")
    assert main(["plan", "d"]) == 1
    assert "argument --region: must be an AWS Region name" in capsys.readouterr().err
