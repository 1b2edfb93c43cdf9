"""A real terminal for tests: tmux runs a command, and its screen is read as a person sees it.

Each ``Terminal`` is a tmux server of its own (``-L``), so tests never touch anyone's sessions.
``run`` types the command into a shell and waits for it to finish (``tmux wait-for``, bounded);
``screen`` is the whole pane with its scrollback, wrapped lines joined, colours left out.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

TMUX = shutil.which("tmux")
_MARK = "--- output ---"  # printed before the command; typed as two quoted halves, never equal


class Terminal:
    def __init__(self, width: int = 160, height: int = 50, env: dict[str, str] | None = None):
        assert TMUX, "tmux is not installed (.ci/system-packages installs it)"
        self.socket = f"fleet-test-{uuid.uuid4().hex[:12]}"
        self.width = width
        environment = {**os.environ, **(env or {})}
        environment.pop("NO_COLOR", None)
        environment.pop("TMUX", None)
        self._env = environment
        self._tmux(
            "new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height), "bash --norc"
        )
        self._tmux("set-option", "-g", "history-limit", "20000")
        self._tmux("send-keys", "-t", "main", "PS1=", "Enter")  # no prompt after the output

    def _tmux(self, *args: str, timeout: float = 30) -> str:
        done = subprocess.run(
            [str(TMUX), "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self._env,
            timeout=timeout,
        )
        assert done.returncode == 0, f"tmux {args[0]}: {done.stderr}"
        return done.stdout

    def run(self, command: str, cwd: Path, timeout: float = 180) -> int:
        """Type ``command`` in ``cwd``, wait until it ends; its exit code."""
        status = Path(f"/tmp/{self.socket}.status")
        line = (
            f"cd {shlex.quote(str(cwd))} && echo '--- out''put ---' && {command};"
            f" echo $? > {status}; tmux wait-for -S done"
        )
        self._tmux("send-keys", "-t", "main", line, "Enter")
        self._tmux("wait-for", "done", timeout=timeout)
        try:
            return int(status.read_text().strip())
        finally:
            status.unlink(missing_ok=True)

    def screen(self) -> str:
        """What the last command showed, as text (wrapped lines joined, colours left out)."""
        text = self._tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "main")
        lines = text.rstrip("\n").split("\n")
        if _MARK in lines:
            lines = lines[len(lines) - lines[::-1].index(_MARK) :]
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(line.rstrip() for line in lines)

    def close(self) -> None:
        subprocess.run([str(TMUX), "-L", self.socket, "kill-server"], capture_output=True)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
