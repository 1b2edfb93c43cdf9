"""Containment: a Package may only zip regular files inside the desired-state directory.

Hole 1 of issue 9: ``files: [../../../../proc/self/environ]`` (or a symlink to it) was accepted by
``validate``, zipped, uploaded and installed on the fleet. Every escape below must be refused by
``validate`` with the manifest's file, the line of the offending entry and its field, and by
``apply`` before a single AWS call; and no byte of what the path points at may reach any output.
"""

from __future__ import annotations

import io
import os
import socket
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.cli import main
from controller.manifests import InvalidDesiredState, load_desired_state
from tests.packages.helpers import minimal_package

CANARY = "fleet-canary-7d1c0b5e9a"  # in this process's environment, so in /proc/self/environ
os.environ["FLEET_CONTAINMENT_CANARY"] = CANARY
FILES_LINE = 11  # the line of the files list in minimal_package_yaml


def write_package(root: Path, *entries: str) -> Path:
    """root/pkg/package.yaml whose zip holds install.ps1, uninstall.ps1 and ``entries``."""
    return minimal_package(root / "pkg", list(entries))


@dataclass(frozen=True)
class Escape:
    name: str
    entry: str
    says: str
    prepare: Callable[[Path, Path], None] = lambda root, outside: None
    field: str = "spec.platforms[0].files[2]"


def _symlink(link: str, target: str | Callable[[Path, Path], Path]) -> Callable[[Path, Path], None]:
    def prepare(root: Path, outside: Path) -> None:
        where = target(root, outside) if callable(target) else Path(target)
        (root / "pkg" / link).symlink_to(where)

    return prepare


def _outside_dir(root: Path, outside: Path) -> Path:
    (outside / "inner").mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text(CANARY)
    return outside / "inner"


def _fifo(root: Path, outside: Path) -> None:
    os.mkfifo(root / "pkg" / "pipe.bin")


def _socket(root: Path, outside: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "pkg" / "sock.bin"))
    server.close()


def _loop(root: Path, outside: Path) -> None:
    (root / "pkg" / "a.bin").symlink_to("b.bin")
    (root / "pkg" / "b.bin").symlink_to("a.bin")


def _git_config(root: Path) -> None:
    """A checkout's credentials, inside the root when the root is a clone."""
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "config").write_text(f"url = https://x-access-token:{CANARY}@example.com/r\n")


def _dotenv(root: Path) -> None:
    (root / "pkg" / ".env").write_text(f"TOKEN={CANARY}\n")


def _directory(root: Path, outside: Path) -> None:
    (root / "pkg" / "payload").mkdir()


ESCAPES = [
    Escape("dotdot-to-proc", "../../../../proc/self/environ", "leaves the desired-state directory"),
    Escape("symlink-to-proc", "env.bin", "resolves outside the desired-state directory",
           _symlink("env.bin", "/proc/self/environ")),
    Escape("relative-symlink-out", "up.bin", "resolves outside the desired-state directory",
           _symlink("up.bin", "../../outside/secret.txt")),
    Escape("dotdot-after-symlinked-dir", "inner/../secret.txt",
           "resolves outside the desired-state directory", _symlink("inner", _outside_dir)),
    Escape("symlinked-dir-out", "inner/../../outside/secret.txt",
           "desired-state directory", _symlink("inner", _outside_dir)),
    Escape("absolute", "/proc/self/environ", "an absolute path"),
    Escape("symlink-to-device", "zero.bin", "resolves outside", _symlink("zero.bin", "/dev/zero")),
    Escape("symlink-loop", "a.bin", "symlink loop", _loop),
    Escape("fifo", "pipe.bin", "is a FIFO", _fifo),
    Escape("socket", "sock.bin", "is a socket", _socket),
    Escape("directory", "payload", "is a directory", _directory),
    Escape("missing", "nothing.bin", "does not exist"),
    Escape("windows-separators", "..\\..\\proc\\self\\environ", "Windows separators"),
    Escape("drive-letter", "C:/Windows/win.ini", "drive letters"),
    Escape("nul", "app\x00.bin", "control character"),
    Escape("newline", "app\n.bin", "control character"),
    Escape("long-component", "a" * 300, "longer than 255 bytes"),
    Escape("long-path", "/".join(["d" * 50] * 30), "at most 1024"),
    Escape("file-as-directory", "install.ps1/x", "should be a directory but is a file"),
    Escape("git-config-inside-root", "../.git/config", "hidden file or directory",
           lambda root, outside: _git_config(root)),
    Escape("symlink-to-hidden-inside-root", "cfg.bin", "leads through a symlink",
           lambda root, outside: (_git_config(root), (root / "pkg" / "cfg.bin").symlink_to(
               "../.git/config"))),
    Escape("dotenv", ".env", "hidden file", lambda root, outside: _dotenv(root)),
]  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "desired", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(CANARY)
    return root, outside


@pytest.mark.parametrize("escape", ESCAPES, ids=lambda escape: escape.name)
def test_validate_refuses_every_escape_with_file_line_and_field(
    tree: tuple[Path, Path], escape: Escape, capsys: pytest.CaptureFixture[str]
) -> None:
    root, outside = tree
    directory = write_package(root, escape.entry)
    escape.prepare(root, outside)

    code = main(["validate", str(root)])

    out, err = capsys.readouterr()
    assert code == 1, out
    assert out == ""
    [header, line] = err.splitlines()
    assert header == "desired state is invalid (1 error):"
    where = f"  {directory / 'package.yaml'}:"
    assert line.startswith(where), line
    assert f":{FILES_LINE}: Package/app: {escape.field}: " in line, line
    assert escape.says in line, line
    assert CANARY not in out + err


def test_a_symlinked_manifest_that_leaves_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "desired"
    directory = write_package(root, "install.ps1")
    (directory / "package.yaml").unlink()
    (tmp_path / "elsewhere.yaml").write_text(f"secret: {CANARY}\n")
    (root / "evil.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(root, build=False)
    [error] = raised.value.errors
    assert error.file == str(root / "evil.yaml")
    assert "resolves outside the desired-state directory" in error.message
    assert CANARY not in str(raised.value)


def test_a_configmap_layout_is_followed(tmp_path: Path) -> None:
    """Kubernetes mounts a ConfigMap as ``..<timestamp>/`` with ``..data`` pointing at it and each
    key a symlink through ``..data``: two-dot names are not hidden files."""
    root = tmp_path / "desired"
    directory = write_package(root, "app.bin")
    stamp = directory / "..2030_01_01_00_00_00.000000001"
    stamp.mkdir()
    (stamp / "app.bin").write_bytes(b"from a configmap")
    (directory / "..data").symlink_to(stamp.name)
    (directory / "app.bin").symlink_to("..data/app.bin")
    [manifest] = load_desired_state(root).of_kind("Package")
    archive = zipfile.ZipFile(io.BytesIO(manifest.built.artifacts[0].read_bytes()))
    assert archive.read("app.bin") == b"from a configmap"


def test_a_manifest_symlinked_to_a_hidden_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "desired"
    write_package(root)
    _git_config(root)
    (root / "config.yaml").symlink_to(".git/config")
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(root, build=False)
    [error] = raised.value.errors
    assert error.file == str(root / "config.yaml")
    assert "hidden file" in error.message
    assert CANARY not in str(raised.value)


def test_symlinks_and_dotdot_that_stay_inside_are_followed(tmp_path: Path) -> None:
    """Containment is about where a path ends, not its spelling: a shared folder beside the
    package (``../shared``) and a symlink inside the tree are ordinary layouts."""
    root = tmp_path / "desired"
    directory = write_package(root, "../shared/common.bin", "other.bin")
    (root / "shared").mkdir()
    (root / "shared" / "common.bin").write_bytes(b"shared bytes")
    (directory / "other.bin").symlink_to("../shared/common.bin")

    [manifest] = load_desired_state(root).of_kind("Package")

    archive = zipfile.ZipFile(io.BytesIO(manifest.built.artifacts[0].read_bytes()))
    assert archive.read("common.bin") == b"shared bytes"
    assert archive.read("other.bin") == b"shared bytes"


def test_apply_refuses_before_any_aws_call(
    sandbox, tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, outside = tree
    write_package(root, "env.bin")
    _symlink("env.bin", "/proc/self/environ")(root, outside)
    sandbox.admin.reset_calls()
    code = main(
        ["apply", str(root), "--endpoint-url", sandbox.endpoint, "--region", sandbox.region]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "spec.platforms[0].files[2]" in err
    assert sandbox.admin.calls() == []
    assert CANARY not in out + err
