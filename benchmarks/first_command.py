"""Benchmark: the README's first command, from start to a converged fleet.

Runs ``fleet-controller run desired-state --sandbox`` (the README's first command, without the
install) as a subprocess and reads its /metrics every 0.2 s until the 50 simulated WorkSpaces
have enrolled over HTTP, are Online, tagged (no WorkSpace not onboarded, no drift) and every
association reports its installs (Success on all its targets, nothing Pending or Failed).
Prints the seconds from the process start to each milestone, and the passes it took.

With ``--clean-clone`` it first does what a new user does: clones this repository's committed
tree, runs the README's first command's install part (a fresh venv, the ``sandbox`` extra) and
prints its time, size and package count, then times the runs with that venv. pip's own cache
(per machine) is used as a user's would be; ``--no-pip-cache`` measures a first install.

    python -m benchmarks.first_command [--runs 3] [--clean-clone [--no-pip-cache]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
WORKSPACES = 50  # the README's first command's default fleet (--sandbox-workspaces)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def samples(url: str) -> list[tuple[str, dict[str, str], float]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return []
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def milestones(found: list[tuple[str, dict[str, str], float]]) -> dict[str, bool]:
    def total(name: str, **labels: str) -> float:
        return sum(v for n, lab, v in found if n == name and labels.items() <= lab.items())

    associations: dict[str, dict[str, float]] = {}
    for name, labels, value in found:
        if name == "fleet_association_instances":
            associations.setdefault(labels["association"], {})[labels["status"]] = value
    installs = bool(associations) and all(
        counts.get("Success", 0) > 0 and counts.get("Pending", 0) == counts.get("Failed", 0) == 0
        for counts in associations.values()
    )
    onboarded = any(n == "fleet_workspaces_not_onboarded" for n, _, _ in found)
    return {
        "enrolled": total("fleet_enrollment_requests_total", result="issued") >= WORKSPACES,
        "online": total("fleet_managed_instances", ping_status="Online") >= WORKSPACES,
        "tagged": onboarded
        and total("fleet_workspaces_not_onboarded") == 0
        and total("fleet_drifted_resources") == 0,
        "installs reported": installs,
    }


def clean_install(workdir: Path, pip_cache: bool) -> tuple[Path, dict[str, float]]:
    """Clone, then the README's first command up to the run: (the clone, its figures)."""
    clone = workdir / "fleet-controller"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    text = (clone / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None, "the README starts with its commands"
    install = block.group(1).splitlines()[0].rpartition(" && ")[0]
    environment = {**os.environ}
    if not pip_cache:
        environment["PIP_NO_CACHE_DIR"] = "1"
    started = time.monotonic()
    subprocess.run(["bash", "-c", install], cwd=clone, check=True, env=environment,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    seconds = time.monotonic() - started
    listed = subprocess.run(
        [str(clone / ".venv/bin/python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    size = sum(f.stat().st_size for f in (clone / ".venv").rglob("*") if f.is_file())
    return clone, {
        "seconds": seconds,
        "packages": len(json.loads(listed.stdout)),
        "megabytes": size / 1e6,
    }


def run_once(python: str = sys.executable, cwd: Path = ROOT) -> dict[str, float]:
    port = free_port()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(
        [python, "-m", "controller.cli", "run", "desired-state", "--sandbox",
         "--metrics-host", "127.0.0.1", "--metrics-port", str(port), "--log-format", "json"],
        cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    reached: dict[str, float] = {}
    passes = 0.0
    try:
        while time.monotonic() - started < 300 and process.poll() is None:
            found = samples(f"http://127.0.0.1:{port}/metrics")
            for name, done in milestones(found).items():
                if done and name not in reached:
                    reached[name] = time.monotonic() - started
            if len(reached) == 4:
                passes = sum(
                    v
                    for n, lab, v in found
                    if n == "fleet_reconciles_total" and lab["result"] == "success"
                )
                break
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    if len(reached) < 4:
        raise RuntimeError(f"not converged within 300 s: reached {reached}")
    reached["passes"] = passes
    return reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clean-clone", action="store_true", help="clone and install first")
    parser.add_argument("--no-pip-cache", action="store_true", help="with --clean-clone")
    args = parser.parse_args()
    python, cwd = sys.executable, ROOT
    with tempfile.TemporaryDirectory() as workdir:
        if args.clean_clone:
            cwd, figures = clean_install(Path(workdir), pip_cache=not args.no_pip_cache)
            python = str(cwd / ".venv/bin/python")
            cache = "without pip's cache" if args.no_pip_cache else "with pip's cache"
            print(
                f"install from a clean clone ({cache}): {figures['seconds']:.0f} s,"
                f" {figures['packages']:.0f} packages, {figures['megabytes']:.0f} MB"
            )
        runs = [run_once(python, cwd) for _ in range(args.runs)]
    print(
        f"`fleet-controller run desired-state --sandbox`, {WORKSPACES} WorkSpaces, {args.runs} run(s):"
    )
    for milestone in ("enrolled", "online", "tagged", "installs reported"):
        times = [r[milestone] for r in runs]
        print(
            f"  {milestone:>18}: median {statistics.median(times):5.1f} s,"
            f" max {max(times):5.1f} s after start"
        )
    print(f"  passes until converged: {[int(r['passes']) for r in runs]} (interval 300 s)")


if __name__ == "__main__":
    main()
