"""The image, built from the Dockerfile unchanged and exercised inside, as uid 10001.

``tests/deploy/image.py`` says how (podman build on a Debian-made stand-in for the official base,
wheels from a wheelhouse pinned to the suite's own versions, no package index; buildah run in
chroot isolation). Inside the image, with its own entrypoint and user: ``--help``; ``validate``
on the example mounted read-only; ``run`` on that example against a sandbox on the host until the
fleet is reconciled, with /metrics and /healthz answering and the HEALTHCHECK command exiting 0
(and not 0 once the controller stopped), SIGTERM ending it with 0; the image's default command
following a git remote (an expected failure on the Debian-made base, see its mark); nothing
written outside the declared volumes; no compiler and none of the sandbox's dependencies in the
image. The size and the build time are printed in the terminal summary. These tests need root,
podman, buildah and mmdebstrap (.ci/system-packages): without them they fail and say why; they
never skip.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.image import (
    Container,
    Image,
    Started,
    build_image,
    sandbox_only_distributions,
)
from tests.e2e import fleet
from tests.e2e.harness import eventually, free_port, http_get
from tests.runtime.gitrepo import GitRemote, example_files

pytestmark = pytest.mark.timeout(1800)  # a cold machine makes the base image and downloads wheels

EXAMPLE = Path(__file__).resolve().parents[2] / "desired-state"
REGION = "us-east-1"
USER = "10001"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build_image(tmp_path_factory.mktemp("image"))


@pytest.fixture
def container(image: Image) -> Iterator[Container]:
    made = Container(image)
    yield made
    made.remove()


def config(image: Image) -> dict[str, Any]:
    found: dict[str, Any] = image.config["Config"]
    return found


def entrypoint(image: Image) -> list[str]:
    return list(config(image)["Entrypoint"])


def test_the_image_declares_its_user_volumes_port_and_healthcheck(image: Image):
    declared = config(image)
    assert declared["User"].split(":")[0] == USER
    assert set(declared["Volumes"]) == {"/var/lib/fleet-controller", "/tmp"}
    assert "9100/tcp" in declared["ExposedPorts"]
    assert image.config["Healthcheck"]["Test"][0] == "CMD"


def test_help_runs_as_the_image_user(container: Container):
    result = container.run([*entrypoint(container.image), "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: fleet-controller")
    assert container.run(["id", "-u"]).stdout.strip() == USER
    assert container.writes_outside_volumes() == []


def test_validate_reads_the_example_mounted_read_only(container: Container):
    container.mounts["/desired-state"] = str(EXAMPLE)
    result = container.run([*entrypoint(container.image), "validate", "/desired-state"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid (1 Activation, 1 Enrollment, 3 Package, 2 TagSync, 3 Association)" in (
        result.stdout
    )
    refused = container.run(["sh", "-c", "echo x > /desired-state/written"])
    assert refused.returncode != 0 and "Read-only" in refused.stderr
    assert container.writes_outside_volumes() == []


def test_the_write_check_sees_what_lands_outside_the_volumes(container: Container):
    """The check the other tests end with can fail: a file in /var/tmp (writable by anyone, not a
    volume) is reported; what the volumes receive is not."""
    wrote = container.run(
        ["sh", "-c", "echo x > /var/tmp/outside && echo y > /tmp/inside && "
         "mkdir -p /var/lib/fleet-controller/git/objects"]
    )  # fmt: skip
    assert wrote.returncode == 0, wrote.stderr
    assert container.writes_outside_volumes() == ["/var/tmp/outside"]


def test_no_compiler_and_no_sandbox_in_the_image(container: Container):
    compilers = container.run(
        ["sh", "-c", "for c in cc gcc g++ c++ clang make ld as; do command -v $c; done; true"]
    )
    assert compilers.stdout.split() == []
    packages = container.run(["dpkg-query", "-W", "-f", "${Package}\\n"]).stdout.split()
    build_tools = re.compile(
        r"(gcc|g\+\+|cpp|clang|binutils|make|build-essential|libc6-dev|(lib)?python3[\d.]*-dev)"
        r"(-[\d.]+)?"
    )
    assert [p for p in packages if build_tools.fullmatch(p)] == []
    assert "git" in packages  # the git source needs it; proves the listing is real

    listed = container.run(
        [
            "python",
            "-c",
            "import importlib.metadata as m, importlib.util as u, json; print(json.dumps("
            "[sorted(d.metadata['Name'] for d in m.distributions()), "
            "u.find_spec('fleet_sandbox') is not None]))",
        ]
    )
    assert listed.returncode == 0, listed.stderr
    installed, has_sandbox = json.loads(listed.stdout)
    installed = {re.sub(r"[-_.]+", "-", name).lower() for name in installed}
    sandbox_only = sandbox_only_distributions()
    assert {"moto", "flask", "werkzeug"} <= sandbox_only, sandbox_only
    assert "boto3" in installed and "pydantic" in installed
    assert sorted(installed & sandbox_only) == []
    assert has_sandbox is False


def controller_command(image: Image, endpoint: str, port: int, *source: str) -> list[str]:
    """The image's entrypoint running ``run`` against ``endpoint``, metrics on ``port``."""
    return [
        *entrypoint(image), *source,
        "--endpoint-url", endpoint, "--region", REGION,
        "--metrics-host", "127.0.0.1", "--metrics-port", str(port),
        "--interval", "5", "--jitter", "0", "--log-format", "json", "--controller-id", "image",
    ]  # fmt: skip


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def with_log(running: Started, error: AssertionError) -> AssertionError:
    return AssertionError(f"{error}\n--- the controller's log ---\n{running.text()[-4000:]}")


def test_run_reconciles_a_sandbox_on_the_host(
    image: Image, container: Container, sandbox, tmp_path: Path
):
    """``run`` on the example mounted read-only reconciles a fleet in a sandbox on the host;
    /healthz and /metrics answer; the image's HEALTHCHECK passes, and fails once it stopped."""
    container.mounts["/desired-state"] = str(EXAMPLE)
    fleet.make_fleet(sandbox.endpoint, REGION, finance=2, engineering=1)
    # The example's packages are uploaded to its bucket: without it they are refused.
    sandbox.client("s3").create_bucket(Bucket="fleet-controller-packages-example")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    health = {"FLEET_HEALTH_URL": f"{url}/healthz"}  # what the HEALTHCHECK command reads
    command = controller_command(image, sandbox.endpoint, port, "run", "/desired-state")
    running = container.start(command, {**AWS_ENV, **health}, tmp_path / "controller.log")
    probe = image.config["Healthcheck"]["Test"][1:]
    try:
        _reconciles_the_fleet(running, sandbox.endpoint, url)
        checked = container.run(probe, env=health)
        assert checked.returncode == 0, checked.stderr
    except AssertionError as error:
        raise with_log(running, error) from None
    finally:
        code = running.stop()
    assert code == 0, f"SIGTERM should end run with 0, got {code}:\n{running.text()[-4000:]}"
    assert container.run(probe, env=health).returncode != 0, "the probe passes with nothing up"
    assert container.writes_outside_volumes() == []


def test_the_default_command_follows_git(
    image: Image, container: Container, sandbox, tmp_path: Path
):
    """ENTRYPOINT + CMD as shipped (run, the clone in the home volume), following a git remote
    through FLEET_GIT_URL as a deployment sets it: the commit is read and valid, and the clone
    is written only under the declared volumes."""
    remote = GitRemote(tmp_path / "git")
    sha = remote.commit(example_files(), "the example fleet")
    # git refuses a repository another user owns ("dubious ownership"); a real remote is served
    # over https or ssh, so this local one is handed to the image's user.
    for path in [remote.bare, *remote.bare.rglob("*")]:
        os.chown(path, int(USER), int(USER), follow_symlinks=False)
    container.mounts["/remote.git"] = str(remote.bare)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = controller_command(image, sandbox.endpoint, port, *config(image)["Cmd"])
    git_env = {
        "FLEET_GIT_URL": "file:///remote.git",
        "FLEET_GIT_REF": "main",
        "FLEET_GIT_PATH": "desired-state",
    }
    running = container.start(command, {**AWS_ENV, **git_env}, tmp_path / "controller.log")

    def revision_read() -> bool:
        assert running.running(), "the controller exited"
        try:
            status, body = http_get(f"{url}/metrics", timeout=2)
        except OSError:
            return False
        text = body.decode()
        return status == 200 and f'revision="{sha}"' in text

    try:
        eventually(revision_read, 120, what=f"revision {sha[:12]} read from the git remote")
        assert "fleet_desired_state_valid 1.0" in http_get(f"{url}/metrics")[1].decode()
    except AssertionError as error:
        raise with_log(running, error) from None
    finally:
        code = running.stop()
    assert code == 0, running.text()[-4000:]
    assert container.writes_outside_volumes() == []


def _reconciles_the_fleet(running: Started, endpoint: str, url: str) -> None:
    """/healthz answers, the example's activation is published, the booted WorkSpaces are tagged
    and /metrics counts a successful pass: the controller in the image did the work."""

    def healthy() -> bool:
        assert running.running(), "the controller exited"
        try:
            return http_get(f"{url}/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    eventually(healthy, 120, what="/healthz answering from the container")
    eventually(lambda: fleet.published(endpoint, REGION), 60, what="activation published")
    assert fleet.boot(endpoint, REGION) == 3
    eventually(
        lambda: fleet.all_tagged(endpoint, REGION, fleet.FINANCE, "Compliance", "sox"),
        60,
        what="finance instances tagged by the controller in the image",
    )
    status, body = http_get(f"{url}/metrics")
    assert status == 200
    success = r'^fleet_reconciles_total\{[^}]*result="success"[^}]*\} (\S+)$'
    successes = re.findall(success, body.decode(), re.M)
    assert successes and float(successes[0]) >= 1, body.decode()[:2000]
