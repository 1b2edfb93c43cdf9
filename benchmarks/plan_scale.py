"""Benchmark: ``plan`` at 1,000, 10,000 and 20,000 WorkSpaces: process CPU and peak RSS.

The fleet grows in one sandbox (half in each example directory, every WorkSpace registered and
tagged by an apply first, so each plan is a zero-drift plan of the example's Activation and
TagSyncs). ``plan`` runs as an operator runs it, in its own process, with the production rate
limits on (so its wall time is mostly the WorkSpaces API's 2 calls/s, not CPU); that process
reports its own CPU (user + system) and peak RSS (VmHWM). The goal: RSS <= 200 MB at 20,000.

    python -m benchmarks.plan_scale [--sizes 1000 10000 20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.fleet import desired_state, fake_credentials, make_reconciler, onboard
from controller.observability.logging import configure_logging
from fleet_sandbox.client import SandboxClient
from fleet_sandbox.server import Sandbox

_CHILD = textwrap.dedent(
    """\
    import resource, sys
    from pathlib import Path
    from controller.cli import main
    code = main(sys.argv[1:])
    status = Path("/proc/self/status").read_text()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"peak_kib={peak} cpu_s={usage.ru_utime + usage.ru_stime:.3f}", file=sys.stderr)
    sys.exit(code)
    """
)


def plan_process(endpoint: str, directory: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one ``plan`` in its own process."""
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": "benchmark", "AWS_SECRET_ACCESS_KEY": "x"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "plan", str(directory), "--endpoint-url", endpoint,
         "--region", "us-east-1", "--controller-id", "benchmark", "--log-level", "warning",
         "--detailed-exitcode"],
        capture_output=True, text=True, env=environment, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:  # 0: no changes (zero drift), as it must be
        raise RuntimeError(f"plan exited {done.returncode}: {done.stderr[-2000:]}")
    report = done.stderr.strip().splitlines()[-1]
    fields = dict(part.split("=") for part in report.split())
    return wall, float(fields["cpu_s"]), int(fields["peak_kib"]) / 1024


def run(sizes: list[int]) -> None:
    configure_logging("json", "warning")
    fake_credentials()
    print(f"{'WorkSpaces':>10} {'plan wall s':>11} {'CPU s':>7} {'peak RSS MiB':>12}")
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as workdir:
        admin = SandboxClient(sandbox.endpoint)
        desired = desired_state(Path(workdir))
        onboarding = make_reconciler(sandbox.endpoint, only_activations=True)
        applying = make_reconciler(sandbox.endpoint)
        have = 0
        for size in sorted(sizes):
            onboard(admin, onboarding, desired, size, have)
            have = size
            _, result = applying.reconcile(desired)  # tag the new instances: zero drift after
            if not result.ok:
                raise RuntimeError(f"the apply at {size} failed: {result.failed[:3]}")
            wall, cpu, rss = plan_process(sandbox.endpoint, Path(workdir))
            print(f"{size:>10} {wall:>11.1f} {cpu:>7.2f} {rss:>12.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 20000])
    run(parser.parse_args().sizes)


if __name__ == "__main__":
    main()
