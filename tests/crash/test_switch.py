"""The crash switch itself: it kills like SIGKILL, only where named, and every point is wired."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from controller.contract import crashpoints
from controller.contract.crashpoints import CRASH_EXIT_CODE, CRASH_POINTS, ENV

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent(
    """\
    import atexit, sys
    from controller.contract.crashpoints import crash_point
    atexit.register(lambda: print("atexit ran"))
    print("buffered before the crash")  # a pipe: block-buffered, never flushed by os._exit
    try:
        crash_point("package.promoted")
        crash_point("tagsync.added")
    finally:
        print("finally ran")
    print("survived")
    """
)


def _run(env_value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "PYTHONUNBUFFERED")}
    if env_value is not None:
        env[ENV] = env_value
    return subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_a_named_point_ends_the_process_at_once_without_cleanup():
    done = _run("tagsync.added")
    assert done.returncode == CRASH_EXIT_CODE
    assert done.stdout == ""  # nothing flushed: no finally, no atexit, not even buffered output
    assert done.stderr == "fleet-controller: crash point tagsync.added\n"


def test_a_list_names_several_points_and_the_first_reached_wins():
    done = _run(" tagsync.added , package.promoted ")
    assert done.returncode == CRASH_EXIT_CODE
    assert done.stderr.endswith("crash point package.promoted\n")


def test_unset_or_naming_another_point_changes_nothing():
    for value in (None, "", "activation.created"):
        done = _run(value)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "buffered before the crash",
            "finally ran",
            "survived",
            "atexit ran",
        ]


def test_an_unknown_point_name_is_refused_loudly():
    with pytest.raises(ValueError, match="unknown crash point"):
        crashpoints._armed("activation.created,package.promted")
    assert crashpoints._armed("activation.created,tagsync.added") == {
        "activation.created",
        "tagsync.added",
    }


def test_this_process_has_no_armed_point():
    assert crashpoints.armed() == frozenset()


def _points_in_source() -> Counter[str]:
    """Every crash_point("...") call in the controller package, by name."""
    found: Counter[str] = Counter()
    for path in (ROOT / "controller").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "crash_point"
            ):
                [argument] = node.args
                assert isinstance(argument, ast.Constant), f"{path}: a crash point is a literal"
                found[str(argument.value)] += 1
    return found


def test_every_listed_point_is_wired_and_every_wired_point_is_listed():
    used = _points_in_source()
    assert set(used) == set(CRASH_POINTS)
    assert len(CRASH_POINTS) == len(set(CRASH_POINTS))
    assert all(
        name.split(".")[0] in {"activation", "package", "association", "tagsync"}
        for name in CRASH_POINTS
    )
