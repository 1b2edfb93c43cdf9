"""The evaluator's verdict, read from its parse tree: what its main flow answers and exits with
for each action and each verdict of the rules, against spec.yaml's ``outcomes``.

No PowerShell runs here. The main flow (the script's top-level statements after its functions) is
walked for every (action, verdict) pair with everything else on the path where the rules arrived
and are valid: an ``if`` is decided by evaluating its condition, which may only compare
``$finding.Verdict``, ``$action`` and the variables of that path with literals (``-ceq``,
``-cne``, ``-eq``, ``-ne``, joined by ``-and`` / ``-or``); a ``try`` runs its body; the first
``exit`` ends the walk with the last ``Write-Answer`` message. A condition on anything else is a
problem too, so a restructured main flow is looked at, not silently accepted.
"""

from __future__ import annotations

import re
from typing import Any

from tree_sitter import Node

from tests.detection.powershell import Script
from tests.detection.spec import template

VERDICTS = ("detected", "not-detected", "error")
ACTIONS = ("Install", "Uninstall")
# The variables of the main flow on the path where both environment variables arrived and the
# rules were read without a problem; the walk varies $action and $finding.Verdict.
HAPPY_PATH = {"$null": None, "$rulesJson": "<the rules>", "$problem": None}

_COMPARISON = re.compile(
    r"^\s*(?P<left>\$[\w.]+|'[^']*')\s+(?P<op>-c?eq|-c?ne)\s+(?P<right>\$[\w.]+|'[^']*')\s*$",
    re.IGNORECASE,
)


class Unmodelled(Exception):
    """The main flow does something the walk cannot decide."""


class _Exit(Exception):
    def __init__(self, message: str | None, code: int) -> None:
        self.message, self.code = message, code


def _operand(text: str, env: dict[str, Any]) -> Any:
    if text.startswith("'"):
        return text[1:-1]
    if text not in env:
        raise Unmodelled(f"a condition reads {text}, which the verdict walk does not model")
    return env[text]


def _condition(text: str, env: dict[str, Any]) -> bool:
    """``a -ceq 'x' -or b -ne $null ...`` (``-and`` binds tighter than ``-or``)."""
    alternatives = re.split(r"\s+-or\s+", text.strip(), flags=re.IGNORECASE)
    for alternative in alternatives:
        terms = re.split(r"\s+-and\s+", alternative, flags=re.IGNORECASE)
        if all(_comparison(term, env) for term in terms):
            return True
    return False


def _comparison(term: str, env: dict[str, Any]) -> bool:
    match = _COMPARISON.match(term)
    if match is None:
        raise Unmodelled(f"a condition the verdict walk cannot read: {term.strip()!r}")
    left, right = _operand(match["left"], env), _operand(match["right"], env)
    op = match["op"].lower()
    if not op.startswith("-c") and isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    equal = left == right
    return equal if op.endswith("eq") else not equal


class _Walk:
    def __init__(self, script: Script, env: dict[str, Any]) -> None:
        self.script = script
        self.env = env
        self.message: str | None = None

    def block(self, statements: list[Node]) -> None:
        for statement in statements:
            self.statement(statement)

    def statement(self, node: Node) -> None:
        script = self.script
        if node.type == "if_statement":
            self._if(node)
        elif node.type == "try_statement":
            body = next(c for c in node.children if c.type == "statement_block")
            self.block(_statements(body))
        elif node.type == "flow_control_statement" and node.children[0].type == "exit":
            code = script.span(node)[4:].strip()
            if not code.isdigit():
                raise Unmodelled(f"exit {code!r} is not a literal code")
            raise _Exit(self.message, int(code))
        elif node.type == "pipeline":
            for command in script.commands(node):
                if script.command_name(command).lower() == "write-answer":
                    arguments = script.arguments(command)
                    literal = script.argument_literal(arguments[0]) if arguments else None
                    self.message = literal if literal is not None else "<not a literal>"

    def _if(self, node: Node) -> None:
        script = self.script
        children = list(node.children)
        condition = next(c for c in children if c.type == "pipeline")
        body = next(c for c in children if c.type == "statement_block")
        if _condition(script.span(condition), self.env):
            self.block(_statements(body))
            return
        for clause in children:
            if clause.type in ("elseif_clauses", "elseif_clause", "else_clause"):
                raise Unmodelled("an elseif/else in the main flow: extend the verdict walk")


def _statements(block: Node) -> list[Node]:
    lists = [c for c in block.children if c.type == "statement_list"]
    return [c for c in (lists[0].children if lists else []) if c.type not in ("comment",)]


def main_flow(script: Script) -> list[Node]:
    statements = next(c for c in script.root.children if c.type == "statement_list")
    return [
        c
        for c in statements.children
        if c.type not in ("function_statement", "comment", "empty_statement")
    ]


def answer(script: Script, action: str, verdict: str) -> tuple[str | None, int | None]:
    """(message template, exit code) the main flow ends with for ``action`` and ``verdict``."""
    env = {**HAPPY_PATH, "$action": action, "$finding.Verdict": verdict}
    walk = _Walk(script, env)
    try:
        walk.block(main_flow(script))
    except _Exit as done:
        return done.message, done.code
    return walk.message, None


def verdict_problems(script: Script, outcomes: list[dict[str, Any]]) -> list[str]:
    """Each (action, verdict) whose answer or exit code is not the specification's outcome."""
    found: list[str] = []
    for action in ACTIONS:
        for verdict in VERDICTS:
            wanted = next(
                o for o in outcomes if o["verdict"] == verdict and o["action"] in (action, "any")
            )
            try:
                message, code = answer(script, action, verdict)
            except Unmodelled as error:
                return [f"verdict walk: {error}"]
            expected = (template(wanted["says"]), int(wanted["exit"]))
            if (message, code) != expected:
                found.append(
                    f"{action} with a {verdict} verdict answers {message!r} and exits {code},"
                    f" the specification says {expected[0]!r} and exit {expected[1]}"
                )
    return found
