"""Fault matrix: does a 500-WorkSpace fleet converge under each fault, and with how many writes?

For each fault (throttling at 30%, 5xx at 10%, +500 ms latency, connection resets at 10%, and lost
responses at 5% for contrast) it onboards a fresh fleet without faults, measures the drift (the
writes a perfect controller needs), turns the fault on, and reconciles until a plan is empty. It
prints the time to converge and the write accounting, checking the issue's equation:

    write attempts == writes needed + write attempts that failed before reaching the server

(throttled, 5xx and reset attempts reach the sandbox's counter but change nothing). A lost
response is different: the server acted, the client cannot know, and an idempotent write is
simply sent again; those extra served writes are listed separately. The controller's default
per-service rate limits are on, as in production.

    python -m benchmarks.fault_matrix [--workspaces 500] [--only throttle ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.fleet import (
    desired_state,
    fake_credentials,
    make_reconciler,
    onboard,
    writes_needed,
)
from controller.aws import is_read
from controller.observability.logging import configure_logging
from fleet_sandbox.client import SandboxClient
from fleet_sandbox.server import Sandbox

FAULTS: dict[str, dict[str, Any]] = {
    "throttle 30%": {"throttle_rate": 0.3},
    "5xx 10%": {"error_rate": 0.1},
    "+500 ms latency": {"latency_ms": 500},
    "connection resets 10%": {"reset_rate": 0.1},
    "lost responses 5%": {"lost_response_rate": 0.05},
}
FAILED_BEFORE_SERVER = ("throttle", "error", "reset")
MAX_PASSES = 15


def _writes_by_outcome(admin: SandboxClient) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for row in admin.calls():
        if not is_read(row["operation"]):
            outcomes[row["outcome"]] += row["count"]
    return outcomes


def run_fault(admin: SandboxClient, endpoint: str, name: str, size: int) -> dict[str, Any]:
    admin.reset()
    with tempfile.TemporaryDirectory() as workdir:
        desired = desired_state(Path(workdir))
        onboard(admin, make_reconciler(endpoint, only_activations=True), desired, size)
        reconciler = make_reconciler(endpoint, rate_limits=True)
        needed = writes_needed(reconciler.plan(desired))
        admin.set_faults([FAULTS[name]], seed=1)
        admin.reset_calls()
        reconciler.aws.recorder.reset()
        started = time.perf_counter()
        passes = 0
        converged = False
        while passes < MAX_PASSES:
            passes += 1
            try:
                plan, _ = reconciler.reconcile(desired)
            except Exception:  # a read that failed through every retry: the next pass tries again
                continue
            if not plan.operations:
                converged = True
                break
        elapsed = time.perf_counter() - started
        outcomes = _writes_by_outcome(admin)
        admin.set_faults([])
        check = make_reconciler(endpoint).plan(desired)
    failed_before = sum(outcomes[o] for o in FAILED_BEFORE_SERVER)
    attempts = sum(outcomes.values())
    lost = outcomes["lost_response"]
    return {
        "fault": name,
        "converged": converged and not check.operations,
        "passes": passes,
        "seconds": elapsed,
        "needed": needed,
        "attempts": attempts,
        "failed_before_server": failed_before,
        "lost_responses": lost,
        "holds": attempts == needed + failed_before + lost,
        "client_retries": reconciler.aws.recorder.retries(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=500)
    parser.add_argument("--only", nargs="+", choices=sorted(FAULTS), metavar="FAULT")
    args = parser.parse_args()
    configure_logging("json", "critical")
    fake_credentials()
    print(
        f"{'fault':24} {'conv':>5} {'passes':>6} {'seconds':>8} {'needed':>7} {'attempts':>9}"
        f" {'failed@0':>9} {'lost':>5} {'equation':>9} {'retries':>8}"
    )
    with Sandbox() as sandbox:
        admin = SandboxClient(sandbox.endpoint)
        for name in args.only or FAULTS:
            row = run_fault(admin, sandbox.endpoint, name, args.workspaces)
            print(
                f"{row['fault']:24} {'yes' if row['converged'] else 'NO':>5} {row['passes']:>6}"
                f" {row['seconds']:>8.1f} {row['needed']:>7} {row['attempts']:>9}"
                f" {row['failed_before_server']:>9} {row['lost_responses']:>5}"
                f" {'holds' if row['holds'] else 'BROKEN':>9} {row['client_retries']:>8}",
                flush=True,
            )
    print(
        "\nneeded: writes a perfect controller makes for the drift; attempts: write calls the"
        " sandbox received; failed@0: attempts refused before acting (throttle, 5xx, reset);"
        " lost: attempts that acted but whose answer was dropped; equation: attempts == needed"
        " + failed@0 + lost; retries: the controller's own retries (reads and writes)."
    )


if __name__ == "__main__":
    main()
