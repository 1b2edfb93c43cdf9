"""The mutation check (benchmarks/mutants.py) and its catalogue.

The catalogue is checked on every run of the suite: each snippet is found exactly once in its
file (a snippet that moved is *stale*: re-anchor it) and every test it names exists. The runner's
verdicts are checked on a tiny tree of its own: a mutant its test catches is killed (naming the
test), one it does not is survived, a missing snippet is stale, a mutant that breaks collection is
broken, never a kill.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from benchmarks.mutants import ROOT, Mutant, load_catalogue, run_mutant


def test_every_mutant_is_anchored_once_and_names_tests_that_exist():
    mutants = load_catalogue()
    assert len(mutants) >= 100
    for mutant in mutants:
        text = (ROOT / mutant.file).read_text(encoding="utf-8")
        assert text.count(mutant.find) == 1, f"{mutant.id}: stale (re-anchor it in mutants.yaml)"
        assert mutant.why, f"{mutant.id}: say what promise it breaks"
        for test in mutant.tests:
            path, _, name = test.partition("::")
            assert (ROOT / path).exists(), f"{mutant.id}: {path} does not exist"
            if name:
                tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
                names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
                assert name.split("[")[0] in names, f"{mutant.id}: no test {test}"


def test_the_catalogue_covers_what_must_never_break():
    files = {mutant.file for mutant in load_catalogue()}
    for required in (
        "controller/contract/ownership.py",
        "controller/engine/prune.py",
        "controller/observability/redaction.py",
        "controller/detection/rules.py",
        "controller/detection/evaluator.ps1",
        "fleet_sandbox/detection.py",
        "controller/service/ha/table.py",
        "controller/service/ha/keeper.py",
        "controller/service/ha/exclusive.py",
        "controller/aws/ratelimit.py",
        "controller/cli.py",
        "controller/containment.py",
        "controller/service/webhook.py",
        "controller/service/enrollment/service.py",
        *(f"controller/kinds/{kind}.py" for kind in ("activation", "association", "package")),
        "controller/kinds/tagsync.py",
        "controller/kinds/enrollment.py",
        "controller/kinds/detection_document.py",
        "controller/kinds/informer.py",
        "controller/service/events/notice.py",
        "controller/service/events/news.py",
        "controller/service/events/worker.py",
    ):
        assert required in files, f"no mutant of {required}"


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "guard.py").write_text(
        textwrap.dedent(
            """\
            def allowed(owner: str) -> bool:
                return owner == "us"


            def unchecked(x: int) -> int:
                return x + 1
            """
        )
    )
    (tmp_path / "test_guard.py").write_text(
        "from guard import allowed\n\n\ndef test_theirs_is_refused():\n"
        "    assert not allowed('them')\n"
    )
    return tmp_path


def _mutant(find: str, replace: str) -> Mutant:
    return Mutant("m", "guard.py", find, replace, ("test_guard.py",), "why")


def test_the_runner_tells_killed_survived_stale_and_broken_apart(tmp_path: Path):
    scratch = _tree(tmp_path)
    original = (scratch / "guard.py").read_text()
    killed = run_mutant(_mutant('owner == "us"', "True"), scratch, timeout=120)
    assert (killed.verdict, killed.detail) == ("killed", "test_guard::test_theirs_is_refused")
    survived = run_mutant(_mutant("x + 1", "x + 2"), scratch, timeout=120)
    assert survived.verdict == "survived"
    stale = run_mutant(_mutant("owner != 'us'", "True"), scratch, timeout=120)
    assert stale.verdict == "stale"
    broken = run_mutant(_mutant('owner == "us"', "owner =="), scratch, timeout=120)
    assert broken.verdict == "broken"
    assert (scratch / "guard.py").read_text() == original  # restored after each
