"""The suite-wide secret scan (tests/secret_scan.py) can fail: it finds a planted code in every
kind of output it reads, and refuses to pass a full run that issued no code at all.

The end-to-end cases run an inner pytest session in a subprocess, with the plugin, a real sandbox
issuing the codes, and one test per kind of output leaking one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.secret_scan import SHOWN_PREFIX, CodeIndex, Finding, SecretScan

ROOT = Path(__file__).resolve().parents[2]
CODE = "Ab3+/Zq9Lm0PxYw7Tt2K"  # the sandbox's alphabet and length


def test_the_index_finds_a_code_wherever_it_is_embedded() -> None:
    other = "Q" * 25
    index = CodeIndex([CODE, other])
    assert index.find(f'{{"value": "{CODE}"}}') == {CODE}
    assert index.find(f"abc{CODE}def and {other}") == {CODE, other}  # inside longer runs
    assert index.find(CODE[:-1] + "!" + CODE[1:]) == set()  # a near miss is not a hit
    assert index.find("[REDACTED]") == set()
    encoded = CODE.replace("+", "%2B").replace("/", "%2F")  # in a URL or a form body
    assert index.find(f"GET /x?code={encoded}&y=1") == {CODE}
    assert index.find('{"code": "' + CODE.replace("/", "\\/") + '"}') == {CODE}
    assert CodeIndex([]).find(CODE) == set()


def test_each_kind_of_output_is_scanned_and_only_the_prefix_is_named() -> None:
    scan = SecretScan()
    scan.know([CODE])
    texts = {
        "log": f'{{"event": "activation created", "value": "{CODE}"}}',
        "captured": f"Plan: 1 to create\n  code {CODE}\n",
        "metrics": f'fleet_managed_resources{{target="{CODE}"}} 1.0\n',
        "exception": f"RuntimeError: registration failed with {CODE}",
        "plan": f"# Plan\n| refused | {CODE} |",
        "file": f"controller.log: {CODE}",
    }
    for kind, text in texts.items():
        assert scan.feed(kind, f"where-{kind}", text) == [Finding(kind, f"where-{kind}", CODE)]
    assert scan.feed("log", "clean", "nothing to see [REDACTED]") == []
    assert [f.kind for f in scan.findings] == list(texts)
    assert scan.bytes_scanned == sum(len(t) for t in texts.values()) + len(
        "nothing to see [REDACTED]"
    )
    shown = str(scan.findings[0])
    assert CODE[:SHOWN_PREFIX] in shown and CODE[SHOWN_PREFIX:] not in shown


def test_a_code_learnt_later_is_found_in_text_fed_after() -> None:
    scan = SecretScan()
    assert scan.feed("log", "before", CODE) == []  # not issued yet: it cannot have leaked
    scan.know([CODE])
    assert scan.feed("log", "after", CODE) == [Finding("log", "after", CODE)]


CONFTEST = """
import os
import subprocess
import sys

import boto3
import pytest

from fleet_sandbox.server import Sandbox

pytest_plugins = ["tests.secret_scan"]

SERVE = (
    "from fleet_sandbox.server import Sandbox; import time;"
    "print(Sandbox().start(), flush=True); time.sleep(300)"
)


def ssm_client(endpoint):
    return boto3.client(
        "ssm", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def ssm():
    with Sandbox() as server:
        yield ssm_client(server.endpoint)


@pytest.fixture
def code(ssm):
    return ssm.create_activation(IamRole="SSMServiceRole")["ActivationCode"]


@pytest.fixture
def remote():
    # A sandbox in a running subprocess that keeps no record file: only its admin route knows.
    env = {k: v for k, v in os.environ.items() if k != "FLEET_SANDBOX_ISSUED_CODES_DIR"}
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE], stdout=subprocess.PIPE, text=True, env=env
    )
    endpoint = child.stdout.readline().strip()
    yield endpoint, ssm_client(endpoint)
    child.kill()
    child.wait()
"""

LEAKS = """
import io
import subprocess
import sys

from controller.contract.plan import Plan
from controller.engine.render import render_text
from controller.observability.logging import configure_logging, get_logger
from controller.observability.metrics import Metrics
from fleet_sandbox.client import SandboxClient

CHILD = (
    "import io, boto3\\n"
    "from controller.observability.logging import configure_logging, get_logger\\n"
    "from fleet_sandbox.server import Sandbox\\n"
    "configure_logging('json', 'info', stream=io.StringIO())\\n"
    "with Sandbox() as server:\\n"
    "    ssm = boto3.client('ssm', endpoint_url=server.endpoint, region_name='us-east-1',\\n"
    "                       aws_access_key_id='testing', aws_secret_access_key='testing')\\n"
    "    code = ssm.create_activation(IamRole='SSMServiceRole')['ActivationCode']\\n"
    "get_logger('child').info('created', value=code)\\n"
)


def test_log_line(code):
    configure_logging("json", "info", stream=io.StringIO())  # only the tee sees this line
    get_logger("leak").info("activation created", value=code)


def test_subprocess_log_line():
    # A child with a sandbox of its own logs its code and exits: neither the code nor the line
    # reach this process, only the sandbox's record file and the log tee.
    subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ).wait(timeout=120)


def test_code_from_a_running_sandbox_subprocess(remote):
    endpoint, ssm = remote
    SandboxClient(endpoint)  # the scan asks this endpoint for its issued codes
    print("remote code", ssm.create_activation(IamRole="SSMServiceRole")["ActivationCode"])


def test_captured_output(code):
    print("the new code is", code)


def test_metric_text(code):
    metrics = Metrics()
    metrics.managed_resources.labels(target=code, kind="Activation").set(1)


def test_plan_output(code):
    assert render_text(Plan(refused=[f"would publish {code}"]))


def test_exception_text(code):
    raise RuntimeError(f"registration failed with {code}")
"""

HOLDS = """
def test_reading_a_code_is_not_a_leak(code):
    assert len(code) == 20
"""

NOTHING = """
def test_nothing_issued():
    assert True
"""


def run_inner(
    directory: Path, files: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:logging", *args],
        cwd=directory, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def summary(outcome: subprocess.CompletedProcess[str]) -> str:
    return outcome.stdout.partition("secret scan")[2]


def test_planted_codes_fail_the_session_naming_each_kind_of_output(tmp_path: Path) -> None:
    files = {"conftest.py": CONFTEST, "test_leaks.py": LEAKS}
    outcome = run_inner(tmp_path, files)
    report = summary(outcome)
    assert outcome.returncode == 1, outcome.stdout[-3000:]
    assert (
        "7 activation code(s) issued by sandboxes (5 in this process, 1 in sandbox subprocesses,"
        " 1 more from /_sandbox/issued-codes)"
    ) in report, report
    leaks = [line.strip() for line in report.splitlines() if line.strip().startswith("code ")]
    expected = [
        ("in log: log lines of this process during", "test_leaks.py::test_log_line"),
        ("in log: log lines of subprocess", "test_leaks.py::test_subprocess_log_line"),
        ("in captured: test_leaks.py::test_code_from_a_running_sandbox_subprocess [Capt", ""),
        ("in captured: test_leaks.py::test_captured_output [Captured stdout call]", ""),
        ("in metrics: Metrics rendered at the end of", "test_leaks.py::test_metric_text"),
        ("in plan: render_text() in", "test_leaks.py::test_plan_output"),
        ("in exception: test_leaks.py::test_exception_text [call failed]", ""),
    ]
    for kind, test in expected:
        assert any(kind in line and test in line for line in leaks), (kind, report)
    assert len(leaks) == len(expected), report
    for line in leaks:  # four characters and an ellipsis, never the code
        assert line[len("code ") + SHOWN_PREFIX] == "…", line

    # The tests themselves pass: the scan alone fails the session.
    passing = run_inner(tmp_path, files, "-k", "not exception_text")
    assert passing.returncode == 1, passing.stdout[-3000:]
    assert "6 passed, 1 deselected" in passing.stdout, passing.stdout[-3000:]
    assert "LEAKED: 6 occurrence(s)" in summary(passing)


def test_a_code_that_is_only_held_is_not_a_leak(tmp_path: Path) -> None:
    outcome = run_inner(tmp_path, {"conftest.py": CONFTEST, "test_holds.py": HOLDS})
    report = summary(outcome)
    assert outcome.returncode == 0, outcome.stdout[-3000:]
    assert "1 activation code(s) issued by sandboxes (1 in this process" in report
    assert "no issued code appears in any of it" in report


def test_a_full_run_that_issued_no_code_fails(tmp_path: Path) -> None:
    files = {"conftest.py": 'pytest_plugins = ["tests.secret_scan"]\n', "test_none.py": NOTHING}
    full = run_inner(tmp_path, files)
    assert full.returncode == 1, full.stdout[-3000:]
    assert "a full run issued no activation code" in summary(full)
    chosen = run_inner(tmp_path, files, "test_none.py")  # a subset may legitimately issue none
    assert chosen.returncode == 0, chosen.stdout[-3000:]
    assert "0 activation code(s) issued" in summary(chosen)
