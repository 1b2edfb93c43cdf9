"""A real git remote for tests: a bare repository and a work clone that commits and pushes to it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "desired-state"
CORE_EXAMPLE_FILES = ("activation.yaml", "tagsync.yaml")


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(cwd or Path.cwd()),
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        },
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


class GitRemote:
    """``remote.git`` (what the controller follows) and ``work/`` (where the test commits)."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.branch = branch
        self.bare = root / "remote.git"
        self.work = root / "work"
        git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(self.bare))
        git("init", "--quiet", f"--initial-branch={branch}", str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def write(self, files: dict[str, str | None]) -> None:
        """Write (or, for None, delete) files in the work clone."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    def commit(self, files: dict[str, str | None], message: str, push: bool = True) -> str:
        """Commit ``files`` (and push them to the remote); returns the new commit's sha."""
        self.write(files)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work)
        sha = git("rev-parse", "HEAD", cwd=self.work)
        if push:
            self.push()
        return sha

    def push(self) -> None:
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work)


def example_files(
    prefix: str = "desired-state", names: tuple[str, ...] = CORE_EXAMPLE_FILES
) -> dict[str, str]:
    """The worked example's Activation and TagSync manifests, under ``prefix`` in the repository."""
    return {f"{prefix}/{name}": (EXAMPLE / name).read_text(encoding="utf-8") for name in names}
