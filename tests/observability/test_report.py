"""What a person reads on the console: one sentence per pass, findings when they appear, change
or clear (not every pass), per-operation lines only in JSON or at debug level."""

from __future__ import annotations

import io
import json

from controller.contract import Action, Finding, Operation, Severity, Step
from controller.engine.reconcile import ApplyResult
from controller.observability.logging import configure_logging, get_logger
from controller.observability.report import (
    FindingJournal,
    finding_text,
    log_finding_changes,
    pass_summary,
    seconds_text,
)


class _Nothing(Step):
    pass


def _op(kind: str, name: str, action: Action = Action.CREATE, reason: str = "") -> Operation:
    return Operation(
        kind=kind, name=name, action=action, resource="r", payload=_Nothing(), reason=reason
    )


def _finding(message: str, examples: tuple[str, ...] = ()) -> Finding:
    return Finding(
        kind="TagSync",
        name="finance",
        severity=Severity.WARNING,
        message=message,
        count=int(message.split()[0]),
        examples=examples,
    )


def test_a_finding_is_news_when_it_appears_changes_or_clears_and_not_in_between():
    journal = FindingJournal()
    first = _finding("20 WorkSpace(s) have no managed instance", ("ws-1",))
    assert [c.what for c in journal.update([first])] == ["appeared"]
    assert journal.update([first]) == []  # the same next pass: nothing to say
    assert journal.update([_finding(first.message, ("ws-2",))]) == []  # examples only
    changed = journal.update([_finding("3 WorkSpace(s) have no managed instance")])
    assert [(c.what, c.before.count, c.after.count) for c in changed] == [("changed", 20, 3)]
    cleared = journal.update([])
    assert [(c.what, c.after) for c in cleared] == [("cleared", None)]
    assert journal.update([]) == []


def test_finding_changes_are_logged_once_each_with_a_sentence():
    out = io.StringIO()
    configure_logging("json", stream=out)
    journal = FindingJournal()
    log = get_logger("test.report")
    finding = _finding("20 WorkSpace(s) have no managed instance")
    for findings in ([finding], [finding], [finding], []):
        log_finding_changes(journal.update(findings), log, target="default")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e["level"]) for e in events] == [
        ("finding appeared", "warning"),
        ("finding cleared", "info"),
    ]
    assert events[0]["summary"] == "TagSync finance: 20 WorkSpace(s) have no managed instance"
    assert events[1]["summary"].startswith("cleared: TagSync finance: ")


def test_a_finding_about_a_whole_kind_or_no_kind_names_only_what_it_is_about():
    """The Enrollment's waiting activations (name ``*``) and the prune guard (kind ``*``) read
    as ``Enrollment: ...`` and ``prune: ...``, not ``Enrollment *: ...`` (seen on the demo's
    console) or ``* prune: ...``; the plan's lines say the same."""
    from controller.contract import Plan
    from controller.engine.render import render_markdown, render_text

    waiting = Finding(
        kind="Enrollment", name="*", severity=Severity.INFO, message="2 WorkSpace(s) hold it"
    )
    guard = Finding(kind="*", name="prune", severity=Severity.INFO, message="3 would go")
    assert finding_text(waiting) == "Enrollment: 2 WorkSpace(s) hold it"
    assert finding_text(guard) == "prune: 3 would go"
    assert finding_text(_finding("3 WorkSpace(s) ...")) == "TagSync finance: 3 WorkSpace(s) ..."
    plan = Plan(findings=[waiting, guard, _finding("3 WorkSpace(s) ...")])
    for rendered in (render_text(plan), render_markdown(plan)):
        assert "Enrollment: 2 WorkSpace(s)" in rendered and "prune: 3 would go" in rendered
        assert "TagSync/finance: 3 WorkSpace(s)" in rendered
        assert "*" not in rendered.replace("**", ""), rendered


def test_the_pass_line_says_what_changed_in_groups_and_when_the_next_pass_comes():
    applied = [
        _op("Package", "b"),
        _op("Package", "a"),
        _op("Activation", "workspaces"),
        *[_op("Enrollment", "office", Action.DELETE, reason=f"used by mi-{i}") for i in range(3)],
    ]
    outcome = ApplyResult(applied=applied, failed=[(_op("Association", "x"), "denied")])
    line = pass_summary(
        2,
        [*applied, _op("Association", "x")],
        outcome,
        enforce=True,
        held=1,
        seconds=0.42,
        next_in=5,
        next_why="the last pass changed something",
    )
    assert line == (
        "pass 2 (0.4 s): created 2 Packages a, b; created Activation workspaces;"
        " deleted 3 resources of Enrollment office, e.g. used by mi-0; 1 failed;"
        " 1 refused or blocked (see the findings). Next pass in 5 s (the last pass changed"
        " something)."
    )
    quiet = pass_summary(3, [], ApplyResult(), enforce=True, held=0, seconds=0.1, next_in=300)
    assert (
        quiet
        == "pass 3 (0.1 s): no changes, the fleet matches the desired state. Next pass in 5 min."
    )
    observing = pass_summary(
        1, [_op("Package", "a")], None, enforce=False, held=0, seconds=1, next_in=None
    )
    assert observing == "pass 1 (1.0 s): observe mode, would create Package a."
    assert [seconds_text(s) for s in (4.4, 150, 5400, 7200, 9000)] == [
        "4 s",
        "2 min",
        "90 min",
        "2 h",
        "2 h 30 min",
    ]


def test_the_console_shows_sentences_and_leaves_per_operation_lines_to_json_and_debug():
    def emit() -> None:
        log = get_logger("test.console")
        log.info("operation applied", detail=True, kind="Package", name="a")
        log.info("reconciled", summary="pass 1 (0.1 s): created Package a.", applied=1)
        log.warning("operation failed", detail=True, kind="Package", name="b")

    console = io.StringIO()
    configure_logging("console", stream=console, colors=False)
    emit()
    lines = console.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("  pass 1 (0.1 s): created Package a.")
    assert "applied=" not in lines[0]  # the sentence, not the fields
    assert "operation failed" in lines[1]  # a warning is shown even when marked detail

    debug = io.StringIO()
    configure_logging("console", level="debug", stream=debug, colors=False)
    emit()
    assert "operation applied" in debug.getvalue() and "applied=1" in debug.getvalue()

    machine = io.StringIO()
    configure_logging("json", stream=machine)
    emit()
    events = [json.loads(line) for line in machine.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["operation applied", "reconciled", "operation failed"]
    assert "detail" not in events[0] and events[1]["summary"].startswith("pass 1")
