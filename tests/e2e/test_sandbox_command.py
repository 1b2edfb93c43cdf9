"""``fleet-controller sandbox`` in one terminal, the commands in another, as a new user does.

The user has no AWS configuration at all: what the sandbox prints (its ``export`` lines) must be
everything ``plan`` and the AWS CLI need. Before, it printed only the endpoint, and ``plan`` said
"no AWS region configured" (and, given one, found no credentials).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT, free_port

pytestmark = pytest.mark.timeout(300)


def _without_aws(tmp_path: Path) -> dict[str, str]:
    """This machine's environment with no AWS settings and no AWS configuration files."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **environment,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "PYTHONUNBUFFERED": "1",
    }


def _exports(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        words = shlex.split(line)
        if words and words[0] == "export":
            found.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
    return found


def test_the_sandboxs_export_lines_are_all_plan_and_the_aws_cli_need(tmp_path):
    bare = _without_aws(tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "controller.cli", "sandbox", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=bare, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines: list[str] = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "admin API" in line or len(lines) > 50:
                break
        exports = _exports(lines)
        assert exports.get("AWS_ENDPOINT_URL") == f"http://127.0.0.1:{port}", lines
        environment = {**bare, **exports}

        planned = subprocess.run(
            [sys.executable, "-m", "controller.cli", "plan", "desired-state", "--format", "json"],
            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert planned.returncode == 0, planned.stderr[-2000:]
        plan = json.loads(planned.stdout)
        assert plan["summary"]["create"] >= 8 and plan["summary"]["refused"] == 0

        described = subprocess.run(
            [sys.executable, "-m", "awscli", "ssm", "describe-instance-information",
             "--output", "json"],
            env={**environment, "AWS_PAGER": ""}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert described.returncode == 0, described.stderr[-2000:]
        assert "InstanceInformationList" in json.loads(described.stdout)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
