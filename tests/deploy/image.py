"""Build the shipped Dockerfile with podman and run the image with buildah, as a user would.

No registry can be pulled from here, and ``podman run`` is refused by this kernel's rlimits, so:

* the base image is ``deploy/image/python-base.sh``'s stand-in for python:3.11-slim-bookworm,
  made from Debian's packages (mmdebstrap -> podman import) and kept per machine under a tag
  holding the script's hash (a changed script makes a new base);
* the wheels come from ``deploy/image/wheelhouse.sh`` pinned to the versions installed in the
  suite's own environment (the ones the suite tests), downloaded once per machine
  (``tests/deploy/cache.py``), and the build runs with ``PIP_NO_INDEX=1``: it asks no index;
* the build context is git's view of this working tree (tracked and new files, not ignored, so
  uncommitted work is what gets built) plus those wheels, and the repository's ``.dockerignore``
  decides what the build sees;
* the newest build keeps its tag (``SUITE_TAG``) and podman its layers between runs on one
  machine, so a run that changed nothing under ``controller/`` rebuilds nothing; untagged builds
  older than a day are pruned;
* ``buildah run --isolation chroot`` runs commands in a working container of the image, as the
  image's user, with the image's volumes mounted apart from its root filesystem, in the host's
  network (so the controller reaches a sandbox on 127.0.0.1 and the test reaches its /metrics).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.cache import cached_directory, digest, machine_lock
from tests.deploy.tools import ROOT, repository_files, tool

BASE_SCRIPT = ROOT / "deploy" / "image" / "python-base.sh"
WHEELHOUSE_SCRIPT = ROOT / "deploy" / "image" / "wheelhouse.sh"
IMAGE_TITLE = "fleet-controller"  # the Dockerfile's org.opencontainers.image.title label
PACKAGING_TOOLS = frozenset({"pip", "setuptools", "wheel"})
"""Build tools every Python base image carries; never pinned from the suite's environment."""

SUITE_TAG = "localhost/fleet-controller:suite"
"""The newest build; it stays (with its layers) so the next run on this machine starts warm."""

FIGURES: dict[str, str] = {}
"""What the build measured, for the terminal summary (tests/deploy/conftest.py)."""


@dataclass(frozen=True)
class Image:
    id: str  # containers start from the ID: another suite may move the tag meanwhile
    tag: str
    config: dict[str, Any]  # podman's inspect: Config, Healthcheck, Size
    size: int
    build_seconds: float


def _run(args: Sequence[str], timeout: float, what: str, **kwargs: Any) -> str:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return result.stdout


def require_image_tools() -> None:
    """Root and the three tools, or an assertion saying what is missing (never a skip)."""
    assert os.geteuid() == 0, (
        "building and running the image needs root here (podman build --isolation chroot and "
        "buildah run as root; rootless podman is not set up on these machines)"
    )
    for name in ("podman", "buildah", "mmdebstrap"):
        tool(name)


# -- the base image ------------------------------------------------------------------------------


def base_image() -> str:
    """The stand-in base for this version of python-base.sh, built once per machine."""
    tag = f"localhost/fleet-controller-base:py3.11-bookworm-{digest([BASE_SCRIPT.read_bytes()])}"
    with machine_lock("base-image"):
        exists = subprocess.run([tool("podman"), "image", "exists", tag], check=False)
        if exists.returncode == 0:
            FIGURES["base image"] = f"{tag} (cached)"
            return tag
        started = time.monotonic()
        _run(["bash", str(BASE_SCRIPT), tag], timeout=900, what="deploy/image/python-base.sh")
        FIGURES["base image"] = f"{tag} (made in {time.monotonic() - started:.0f} s)"
    return tag


# -- the wheels ----------------------------------------------------------------------------------


def tested_versions() -> str:
    """A pip constraints file: every distribution of the suite's environment at its version."""
    lines = sorted(
        f"{canonicalize_name(dist.metadata['Name'])}=={dist.version}"
        for dist in importlib.metadata.distributions()
        if canonicalize_name(dist.metadata["Name"]) not in PACKAGING_TOOLS | {"fleet-controller"}
    )
    return "\n".join(dict.fromkeys(lines)) + "\n"


def wheelhouse() -> Path:
    constraints = tested_versions()
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    key = digest([constraints, pyproject, WHEELHOUSE_SCRIPT.read_bytes(), os.uname().machine])

    def download(directory: Path) -> None:
        started = time.monotonic()
        versions = directory / "constraints.txt"
        versions.write_text(constraints, encoding="utf-8")
        _run(
            ["bash", str(WHEELHOUSE_SCRIPT), str(directory), "--constraint", str(versions)],
            timeout=600,
            what="deploy/image/wheelhouse.sh",
            env={**os.environ, "PYTHON": sys.executable},
        )
        versions.unlink()
        FIGURES["wheels"] = f"downloaded in {time.monotonic() - started:.0f} s"

    FIGURES["wheels"] = "cached"
    return cached_directory("wheelhouse", key, download)


# -- the build -----------------------------------------------------------------------------------


def build_context(directory: Path, wheels: Path) -> Path:
    """git's view of the working tree, plus the wheels in wheelhouse/."""
    for name in repository_files():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # deleted since git listed it
            shutil.copy2(ROOT / name, target)
    for wheel in wheels.glob("*.whl"):
        shutil.copy2(wheel, directory / "wheelhouse" / wheel.name)
    return directory


def build_image(scratch: Path) -> Image:
    """The Dockerfile, unchanged, built on the stand-in base from the wheelhouse alone."""
    require_image_tools()
    base = base_image()
    context = build_context(scratch / "context", wheelhouse())
    tag = SUITE_TAG
    log = scratch / "build-output.txt"
    built_id = scratch / "image-id"
    with machine_lock("image-build"):
        started = time.monotonic()
        command = [
            *(tool("podman"), "build", "--isolation", "chroot", "--network", "host"),
            *("--format", "docker"),  # an OCI image has no HEALTHCHECK
            *("--layers", "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", "PIP_NO_INDEX=1"),
            *("--iidfile", str(built_id), "--tag", tag, str(context)),
        ]
        with log.open("w") as output:
            result = subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT, timeout=1200, check=False
            )
        seconds = time.monotonic() - started
        assert result.returncode == 0, f"podman build failed:\n{log.read_text()[-6000:]}"
        _prune_old_builds()
    # By ID: once the lock is released, another suite's build may take the tag.
    image_id = built_id.read_text().strip()
    inspected = json.loads(_run([tool("podman"), "image", "inspect", image_id], 60, "inspect"))[0]
    image = Image(
        id=inspected["Id"],
        tag=tag,
        config=inspected,
        size=int(inspected["Size"]),
        build_seconds=seconds,
    )
    cached_steps = log.read_text().count("Using cache")
    FIGURES["image"] = f"{image.size / 1e6:.0f} MB (uncompressed), {tag} = {image.id[:12]}"
    FIGURES["build"] = f"{seconds:.0f} s, {cached_steps} steps from podman's layer cache"
    return image


def _prune_old_builds() -> None:
    """Untagged images this module built over a day ago (older builds the tag moved away from,
    and their layers; the Dockerfile's title label marks them), so runs do not fill the disk."""
    label = f"label=org.opencontainers.image.title={IMAGE_TITLE}"
    command = [tool("podman"), "image", "prune", "--force", "--filter", label]
    subprocess.run(
        [*command, "--filter", "until=24h"], capture_output=True, timeout=300, check=False
    )


# -- running it ----------------------------------------------------------------------------------


@dataclass
class Container:
    """A buildah working container of ``image``: run commands in it, see what it wrote."""

    image: Image
    mounts: dict[str, str] = field(default_factory=dict)  # container path -> host path (ro)
    id: str = ""

    def __post_init__(self) -> None:
        self.id = _run([tool("buildah"), "from", self.image.id], 120, "buildah from").strip()

    def _command(self, command: Sequence[str], env: dict[str, str]) -> list[str]:
        args = [tool("buildah"), "run", "--isolation", "chroot"]
        for inside, outside in self.mounts.items():
            args += ["--volume", f"{outside}:{inside}:ro"]
        for name, value in env.items():
            args += ["--env", f"{name}={value}"]
        return [*args, self.id, "--", *command]

    def run(
        self, command: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(command, env or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, command: Sequence[str], env: dict[str, str], log: Path) -> Started:
        output = log.open("wb")
        process = subprocess.Popen(
            self._command(command, env), stdout=output, stderr=subprocess.STDOUT
        )
        return Started(process, output, log)

    def writes_outside_volumes(self) -> list[str]:
        """Paths the container's root filesystem gained, lost or changed.

        The image's volumes are mounted apart, so what they hold never shows here; a directory
        listed only because something under it changed is left out, as are the mount points
        buildah made for ``mounts``."""
        diff = json.loads(_run([tool("podman"), "diff", "--format", "json", self.id], 60, "diff"))
        paths = {p for kind in ("added", "changed", "deleted") for p in diff.get(kind) or []}
        parents = {str(Path(p).parent) for p in paths} | {
            str(parent) for inside in self.mounts for parent in Path(inside).parents
        }
        return sorted(p for p in paths if p not in parents and p not in self.mounts)

    def remove(self) -> None:
        subprocess.run([tool("buildah"), "rm", self.id], capture_output=True, timeout=120)


@dataclass
class Started:
    """A command running in a container, its output going to a log file."""

    process: subprocess.Popen[bytes]
    output: Any
    log: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        self.output.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal_inside(self, signum: int) -> None:
        """Signal the command itself: buildah does not forward signals (it kills its child), and
        chroot isolation shares the host's process table, so the command is found among
        buildah's descendants, past buildah's own helpers."""
        commands = [pid for pid in _descendants(self.process.pid) if not _is_buildah_helper(pid)]
        assert commands, "the command in the container is not running"
        os.kill(commands[0], signum)

    def stop(self, timeout: float = 60) -> int:
        if self.running():
            self.signal_inside(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()
        return int(self.process.returncode)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def _is_buildah_helper(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return True
    return Path(argv0.decode(errors="replace")).name.startswith("buildah")


# -- what must not be in the image ---------------------------------------------------------------


def _closure(requirements: Iterable[str]) -> set[str]:
    """Distribution names ``requirements`` pull in, read from this environment's metadata."""
    found: set[str] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not for this platform: it cannot be in the image either
        found.add(name)
        extras = requirement.extras or {""}
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                pending.append(child)
    return found


def sandbox_only_distributions() -> set[str]:
    """What the sandbox extra brings that the controller itself does not need."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    sandbox = _closure(project["optional-dependencies"]["sandbox"])
    return sandbox - _closure(project["dependencies"]) - PACKAGING_TOOLS
