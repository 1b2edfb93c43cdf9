"""Mutation check: break what must never break, one change at a time, and see a test fail.

Each mutant in ``benchmarks/mutants.yaml`` names a file, an exact piece of its source (which must
occur exactly once, so a refactor that moves the code makes the mutant *stale*, an error, never a
quiet "survived"), the text that replaces it, and the tests that must catch it. The runner copies
the tracked files of the working tree into a scratch directory once, applies each mutant there in
turn, runs its tests with the scratch copy first on ``sys.path`` (also for the controller
subprocesses the tests start), and restores the file.

    python -m benchmarks.mutants                 # every mutant; exit 1 if any survived or is stale
    python -m benchmarks.mutants --only prune-,lease-   # mutants whose id starts with either
    python -m benchmarks.mutants --markdown FILE # also write the report as a Markdown table

A mutant is *killed* when its tests fail (the report names the first failing test), *survived*
when they pass, *stale* when its source snippet is not found exactly once, and *broken* when the
tests could not even be collected (a syntax error in the mutant is a bad mutant, not a kill).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "benchmarks" / "mutants.yaml"


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    verdict: str  # killed | survived | stale | broken
    detail: str
    seconds: float


def load_catalogue(path: Path = CATALOGUE) -> list[Mutant]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    mutants = []
    seen: set[str] = set()
    for entry in entries:
        mutant = Mutant(
            id=str(entry["id"]),
            file=str(entry["file"]),
            find=str(entry["find"]),
            replace=str(entry["replace"]),
            tests=tuple(str(test) for test in entry["tests"]),
            why=str(entry.get("why", "")),
        )
        if mutant.id in seen:
            raise ValueError(f"{path}: mutant id {mutant.id!r} appears twice")
        if mutant.find == mutant.replace:
            raise ValueError(f"{path}: mutant {mutant.id!r} replaces its snippet with itself")
        seen.add(mutant.id)
        mutants.append(mutant)
    return mutants


def scratch_copy(destination: Path) -> None:
    """The tracked files as they are in the working tree (uncommitted edits included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        relative = raw.decode()
        source = ROOT / relative
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _first_failure(report: Path) -> str:
    if not report.exists():
        return ""
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            return f"{case.get('classname', '')}::{case.get('name', '')}"
    return ""


def run_mutant(mutant: Mutant, scratch: Path, timeout: float) -> Outcome:
    target = scratch / mutant.file
    original = target.read_text(encoding="utf-8")
    occurrences = original.count(mutant.find)
    if occurrences != 1:
        return Outcome(mutant, "stale", f"snippet found {occurrences} times in {mutant.file}", 0.0)
    target.write_text(original.replace(mutant.find, mutant.replace), encoding="utf-8")
    report = scratch / ".mutant-report.xml"
    report.unlink(missing_ok=True)
    environment = dict(os.environ, PYTHONPATH=str(scratch), PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                *mutant.tests,
            ],
            cwd=scratch,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired:
        code, output = -1, "timed out"
    finally:
        target.write_text(original, encoding="utf-8")
    seconds = time.monotonic() - started
    if code == 0:
        return Outcome(mutant, "survived", "all its tests passed", seconds)
    if code in (2, 3, 4, 5):  # interrupted, internal error, usage error, nothing collected
        tail = " ".join(output.strip().splitlines()[-3:])
        return Outcome(mutant, "broken", f"pytest exit {code}: {tail[:300]}", seconds)
    failing = _first_failure(report) or ("timeout" if code == -1 else "a test failed")
    return Outcome(mutant, "killed", failing, seconds)


def markdown(outcomes: list[Outcome]) -> str:
    lines = [
        "| mutant | file | what it breaks | verdict | killed by / why not |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        detail = outcome.detail.replace("|", "\\|")
        why = outcome.mutant.why.replace("|", "\\|")
        lines.append(
            f"| `{outcome.mutant.id}` | `{outcome.mutant.file}` | {why} | {outcome.verdict}"
            f" | {detail} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="", help="run the mutants whose id starts with one of these (a,b,...)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant")
    args = parser.parse_args(argv)
    prefixes = tuple(p for p in args.only.split(",") if p) or ("",)
    mutants = [m for m in load_catalogue() if m.id.startswith(prefixes)]
    if not mutants:
        print(f"no mutant id starts with {args.only!r}", file=sys.stderr)
        return 1
    outcomes: list[Outcome] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleet-mutants-") as directory:
        scratch = Path(directory)
        scratch_copy(scratch)
        for index, mutant in enumerate(mutants, start=1):
            outcome = run_mutant(mutant, scratch, args.timeout)
            outcomes.append(outcome)
            print(
                f"[{index}/{len(mutants)}] {outcome.verdict:8} {mutant.id}: {outcome.detail} "
                f"({outcome.seconds:.0f} s)",
                flush=True,
            )
    counts = {verdict: 0 for verdict in ("killed", "survived", "stale", "broken")}
    for outcome in outcomes:
        counts[outcome.verdict] += 1
    summary = ", ".join(f"{count} {verdict}" for verdict, count in counts.items())
    minutes = (time.monotonic() - began) / 60
    print(f"\n{len(outcomes)} mutants: {summary} ({minutes:.1f} min)")
    if args.markdown:
        heading = f"# Mutation check\n\n{len(outcomes)} mutants: {summary} ({minutes:.1f} min).\n\n"
        args.markdown.write_text(heading + markdown(outcomes), encoding="utf-8")
    return 0 if counts["killed"] == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
