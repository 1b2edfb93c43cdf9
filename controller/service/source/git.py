"""A git branch as the desired-state source, through the ``git`` CLI (no shell, no library).

The repository is cloned once (``git init --bare`` and a first fetch) and fetched on every call.
The followed ref is resolved to one commit, exactly that commit's tree at ``path`` is exported
(``git archive``) into a directory of its own, and the desired state is loaded from there: what is
validated and what is reconciled are the same bytes, whatever lands on the branch in between.
That exported tree is the containment root: nothing a manifest names may lead out of it (not into
the clone, whose config holds the URL, nor into another revision's tree).

A revision's tree stays on disk exactly as long as its DesiredState is alive: a finalizer removes
it when the last user (the source, the tracker, a target thread in the middle of a pass) drops it.
So a new revision validating never pulls files from under a pass still working on the old one.

Credentials come from the environment as git itself reads them: ``GIT_SSH_COMMAND`` (a deploy
key), a credential helper, or a token in the URL (``https://x-access-token:TOKEN@host/repo``). A
URL token is registered as a secret so it is redacted from every log line and error, and the URL
is only ever shown without its user part.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import weakref
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import structlog

from controller.manifests import InvalidDesiredState, ManifestError, load_desired_state
from controller.observability.redaction import MIN_SECRET_LENGTH, redact_text, register_secret
from controller.service.source.base import InvalidRevision, Revision, SourceUnavailable

if TYPE_CHECKING:
    from controller.packaging import BuildCache

log = structlog.get_logger("fleet_controller.service.source.git")

FOLLOWED_REF = "refs/fleet-controller/followed"
"""Where the fetched commit is kept locally; one ref of our own, so nothing else is ever touched."""

# A token used as the user name (https://TOKEN@github.com/...) is long; a plain user name is not.
_TOKEN_AS_USER_MIN_LENGTH = 20
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def display_url(url: str) -> str:
    """The URL without its user part (user names, passwords and tokens never reach a log)."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"***@{host}"))
    return url


def register_url_credentials(url: str) -> None:
    """Register a token carried in the URL as a secret, so it is redacted everywhere."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return
    if parts.password and len(parts.password) >= MIN_SECRET_LENGTH:
        register_secret(parts.password)
    elif parts.username and len(parts.username) >= _TOKEN_AS_USER_MIN_LENGTH:
        register_secret(parts.username)


def check_relative_path(path: str) -> str:
    """The desired-state path inside the repository, normalised ('.' for the root)."""
    pure = PurePosixPath(path.strip() or ".")
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"--git-path must be relative to the repository root: {path!r}")
    text = pure.as_posix()
    return "." if text in ("", ".") else text


def check_archive_members(members: list[tarfile.TarInfo]) -> None:
    """What tarfile's "data" filter refuses, for Pythons that lack it: anything but plain files,
    directories and symlinks; absolute or ``..`` paths; links that leave the tree; paths through a
    symlink; set-uid and other special mode bits (refused, not cleared: git never records them)."""
    links = {PurePosixPath(member.name) for member in members if member.issym()}
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise tarfile.TarError(f"{member.name!r} is outside the tree")
        if not (member.isfile() or member.isdir() or member.issym()):
            raise tarfile.TarError(f"{member.name!r} is not a file, directory or symlink")
        if member.mode & ~0o777:
            raise tarfile.TarError(f"{member.name!r} has special mode bits")
        if member.issym():
            target = PurePosixPath(posixpath.normpath(name.parent / member.linkname))
            if target.is_absolute() or target.parts[:1] == ("..",):
                raise tarfile.TarError(f"{member.name!r} links outside the tree")
        if any(parent in links for parent in name.parents):
            raise tarfile.TarError(f"{member.name!r} is reached through a symlink")


class GitSource:
    """Follows ``ref`` of ``url``; each fetch returns the desired state at ``path`` of its head."""

    def __init__(
        self,
        url: str,
        ref: str = "main",
        path: str = ".",
        workdir: Path | None = None,
        timeout_seconds: float = 120.0,
        git: str = "git",
        cache: BuildCache | None = None,
    ) -> None:
        if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
            raise ValueError(f"not a usable git ref: {ref!r}")
        register_url_credentials(url)
        self.url = url
        self.ref = ref
        self.path = check_relative_path(path)
        self.timeout_seconds = timeout_seconds
        self.git = git
        self.cache = cache
        self.description = f"{display_url(url)}@{ref}:{self.path}"
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fleet-controller-git-"))
        self.repository = self.workdir / "repository.git"
        self.trees = self.workdir / "trees"
        self._lock = threading.Lock()
        self._cloned = False
        self._good: Revision | None = None
        self._last_invalid: InvalidRevision | None = None

    # -- the one public operation ----------------------------------------------------------------

    def fetch(self) -> Revision:
        with self._lock:
            self._ensure_clone()
            self._run(
                "fetch", "--quiet", "--no-tags", "--force", "origin", f"+{self.ref}:{FOLLOWED_REF}"
            )
            sha = self._run(
                "rev-parse", "--verify", "--quiet", f"{FOLLOWED_REF}^{{commit}}"
            ).strip()
            if not _SHA.match(sha):
                raise SourceUnavailable(f"{self.description}: the ref resolved to {sha!r}")
            if self._good is not None and self._good.id == sha:
                return self._good
            if self._last_invalid is not None and self._last_invalid.revision == sha:
                raise self._last_invalid
            revision = self._load(sha)
            self._good = revision  # the previous one's tree goes when its last user drops it
            self._last_invalid = None
            return revision

    @property
    def current(self) -> Revision | None:
        """The last valid revision this source returned."""
        return self._good

    def close(self) -> None:
        with self._lock:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    # -- steps -------------------------------------------------------------------------------------

    def _ensure_clone(self) -> None:
        if self._cloned:
            return
        shutil.rmtree(self.trees, ignore_errors=True)  # trees of an earlier process: unused
        self.trees.mkdir(parents=True, exist_ok=True)
        if not (self.repository / "HEAD").is_file():
            self.repository.mkdir(parents=True, exist_ok=True)
            self._run("init", "--quiet", "--bare", str(self.repository), in_repository=False)
        remotes = self._run("remote").split()
        if "origin" in remotes:
            self._run("remote", "set-url", "origin", self.url)  # --git-dir reused after a change
        else:
            self._run("remote", "add", "origin", self.url)
        log.info("following git repository", source=self.description, workdir=str(self.workdir))
        self._cloned = True

    def _load(self, sha: str) -> Revision:
        """Export exactly ``sha``'s tree at ``path`` and validate it.

        Each load gets a directory of its own, even for a sha loaded before (a branch reset
        back to it): an older DesiredState of that sha may still be in use, and its finalizer
        removes its own directory only."""
        tree_root = Path(tempfile.mkdtemp(prefix=f"{sha[:12]}-", dir=self.trees))
        where = f"{sha}:" if self.path == "." else f"{sha}:{self.path}"
        kind = self._run("cat-file", "-t", where, check=False).strip()
        if kind != "tree":
            shutil.rmtree(tree_root, ignore_errors=True)
            invalid = InvalidRevision(
                sha,
                [
                    ManifestError(
                        self.path, None, f"is not a directory in commit {sha[:12]} of {self.ref}"
                    )
                ],
            )
            self._last_invalid = invalid
            raise invalid
        try:
            self._export(where, tree_root)
        except (tarfile.TarError, OSError) as error:
            shutil.rmtree(tree_root, ignore_errors=True)
            refused = InvalidRevision(
                sha,
                [ManifestError(self.path, None, f"cannot be exported from {sha[:12]}: {error}")],
            )
            self._last_invalid = refused
            raise refused from None
        try:
            desired = load_desired_state(tree_root, cache=self.cache)
        except InvalidDesiredState as invalid:
            shutil.rmtree(tree_root, ignore_errors=True)
            located = InvalidRevision(sha, [self._relative(e, tree_root) for e in invalid.errors])
            self._last_invalid = located
            raise located from None
        weakref.finalize(desired, shutil.rmtree, tree_root, True)
        return Revision(sha, desired)

    def _export(self, tree_ish: str, destination: Path) -> None:
        with tempfile.TemporaryFile(dir=self.workdir) as archive:
            self._run("archive", "--format=tar", tree_ish, stdout=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive, mode="r:") as tar:
                # A commit is untrusted input until it validated: absolute paths, links out of the
                # tree and devices are refused. Python 3.11.4 added the "data" filter that does it;
                # Debian bookworm's 3.11.2 has none, so the same rules are checked here first.
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(destination, filter="data")
                else:
                    check_archive_members(tar.getmembers())
                    tar.extractall(destination)

    def _relative(self, error: ManifestError, tree_root: Path) -> ManifestError:
        """Errors name files as they are in the repository (``desired-state/fleet.yaml``), in
        their location and in their message (a duplicate names the first definition)."""
        root = str(tree_root)
        inside = "" if self.path == "." else f"{self.path}/"
        message = error.message.replace(root + os.sep, inside)
        if error.file == root:
            return replace(error, file=self.path, message=message)
        if not error.file.startswith(root + os.sep):
            return replace(error, message=message)
        inner = Path(error.file).relative_to(tree_root).as_posix()
        return replace(error, file=f"{inside}{inner}", message=message)

    # -- running git ---------------------------------------------------------------------------------

    def _run(
        self,
        *args: str,
        in_repository: bool = True,
        check: bool = True,
        stdout: IO[bytes] | None = None,
    ) -> str:
        command = [self.git]
        if in_repository:
            command += ["--git-dir", str(self.repository)]
        command += list(args)
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a terminal nobody watches
            "LC_ALL": "C",
        }
        try:
            completed = subprocess.run(
                command,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                timeout=self.timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SourceUnavailable(
                f"git {args[0]} of {self.description} timed out after {self.timeout_seconds:.0f}s"
            ) from None
        except OSError as error:
            raise SourceUnavailable(f"cannot run {self.git}: {error}") from None
        if check and completed.returncode != 0:
            raise SourceUnavailable(
                f"git {args[0]} of {self.description} failed: {self._clean(completed.stderr)}"
            )
        if stdout is not None:
            return ""
        return bytes(completed.stdout).decode("utf-8", "replace")

    def _clean(self, stderr: bytes) -> str:
        text = stderr.decode("utf-8", "replace").strip()
        text = text.replace(self.url, display_url(self.url))
        with contextlib.suppress(ValueError):
            parts = urlsplit(self.url)
            if parts.netloc and "@" in parts.netloc:
                text = text.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")
        lines = [line for line in text.splitlines() if line.strip()]
        return redact_text(" | ".join(lines[-5:]) or "no error output")
