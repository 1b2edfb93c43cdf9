"""What the shipped PowerShell evaluator must show in its parse tree to match the specification.

``problems(text)`` lists every disagreement between an evaluator's text and spec.yaml: the rule
types its validator accepts and its dispatcher evaluates, the observations each rule type's handler
can emit, the functions and .NET members each handler calls (and must never call), the exit codes
it can end with and the message paired with each, the answer and exit code its main flow gives for
each action and verdict (evaluator_verdict.py), its limits and its machine-wide variables.
A stub (a marker line and ``exit 0``) or a missing handler gives problems; so does a change to the
specification the evaluator does not follow.
"""

from __future__ import annotations

from typing import Any

from tests.detection.evaluator_verdict import verdict_problems
from tests.detection.powershell import Script
from tests.detection.spec import spec, template

LIMIT_VARIABLES = {
    "$RulesMaxChars": ("rulesMaxChars",),
    "$GroupDepthMax": ("groupDepthMax",),
    "$ScriptTimeoutDefault": ("scriptTimeoutSeconds", "default"),
    "$ScriptTimeoutMax": ("scriptTimeoutSeconds", "maximum"),
    "$ScriptTimeoutTotalMax": ("scriptTimeoutSeconds", "totalMaximum"),
    "$ExcerptUnits": ("excerptUnits",),
}


def _limit(path: tuple[str, ...]) -> Any:
    value: Any = spec()["limits"]
    for part in path:
        value = value[part]
    return value


def _emitted(script: Script, nodes: list[Any]) -> set[str]:
    """Observation templates of every ``New-Leaf <verdict> <what> <observation>`` in ``nodes``."""
    found = set()
    for top in nodes:
        for command in script.commands(top):
            if script.command_name(command).lower() != "new-leaf":
                continue
            arguments = script.arguments(command)
            observed = script.argument_literal(arguments[2]) if len(arguments) == 3 else None
            found.add(observed if observed is not None else "<not a literal>")
    return found


def _matches(call: str, found: set[str], literals: list[str]) -> bool:
    if call.lower().endswith(".exe"):
        return any(call.lower() in literal.lower() for literal in literals)
    return call.lower() in {f.lower() for f in found}


def problems(text: str) -> list[str]:
    data = spec()
    script = Script(text)
    found: list[str] = [f"does not parse: {error}" for error in script.errors()]
    marker = f"# FLEET-CONTROLLER-DETECTION-EVALUATOR v{data['version']}"
    if text.splitlines()[:1] != [marker]:
        found.append(f"the first line is not {marker!r}")
    types = set(data["ruleTypes"])
    evaluator = data["evaluator"]
    for role in ("validator", "dispatch"):
        name = evaluator[role]
        if name.lower() not in script.functions:
            found.append(f"no function {name} ({role})")
            continue
        labels = set(script.switch_labels(name))
        if labels != types:
            found.append(
                f"{name} handles {sorted(labels)}, the specification's rule types are {sorted(types)}"
            )

    handlers: dict[str, list[str]] = {}
    if evaluator["dispatch"].lower() in script.functions:
        for label, clause in script.switch_labels(evaluator["dispatch"]).items():
            handlers[label] = [
                script.command_name(c)
                for c in script.commands(clause)
                if script.command_name(c).lower() in script.functions
            ]
    all_calls = script.calls([script.root])
    all_literals = script.literals([script.root])
    for kind, entry in data["ruleTypes"].items():
        if kind not in handlers:
            continue
        closure = script.closure(handlers[kind])
        wanted = {template(o["says"]) for o in entry["observations"]}
        emitted = _emitted(script, closure)
        if emitted != wanted:
            found.append(
                f"{kind}: the handler emits {sorted(emitted - wanted)} beyond the specification"
                f" and lacks {sorted(wanted - emitted)}"
            )
        calls = script.calls(closure)
        literals = script.literals(closure)
        for call in entry.get("calls", []):
            if not _matches(call, calls, literals):
                found.append(f"{kind}: the handler does not call {call}")
        for call in entry.get("never", []):
            if _matches(call, calls, literals):
                found.append(f"{kind}: the handler calls {call}, which the specification forbids")

    everywhere = {
        template(o["says"]) for e in data["ruleTypes"].values() for o in e["observations"]
    }
    everywhere |= {template(o["says"]) for o in evaluator["commonObservations"]}
    stray = _emitted(script, [script.root]) - everywhere
    if stray:
        found.append(f"observations the specification does not list: {sorted(stray)}")
    for call in evaluator["calls"]:
        if not _matches(call, all_calls, all_literals):
            found.append(f"the evaluator does not call {call}")
    for call in evaluator["never"]:
        if _matches(call, all_calls, all_literals):
            found.append(f"the evaluator calls {call}, which the specification forbids")

    codes = {int(code) for code in data["exitCodes"]}
    exits = script.exits()
    ending = {argument for _, argument in exits}
    if not all(argument.isdigit() for argument in ending):
        found.append(f"an exit whose code is not a literal: {sorted(ending)}")
    if {int(a) for a in ending if a.isdigit()} != codes:
        found.append(f"exit codes {sorted(ending)}, the specification's are {sorted(codes)}")
    answered = set(script.answered_exits())
    outcomes = {(template(o["says"]), int(o["exit"])) for o in data["outcomes"]}
    for missing in sorted(outcomes - answered):
        found.append(f"no exit {missing[1]} after writing {missing[0]!r}")
    for extra in sorted(answered - outcomes):
        found.append(f"exit {extra[1]} after {extra[0]!r}, which the specification does not list")

    found += verdict_problems(script, data["outcomes"])

    assigned = script.assignments()
    for variable, path in LIMIT_VARIABLES.items():
        if assigned.get(variable) != str(_limit(path)):
            found.append(
                f"{variable} is {assigned.get(variable)!r}, the specification says {_limit(path)}"
            )
    variables = assigned.get("$MachineVariables", "")
    listed = [
        v.strip().strip("'") for v in variables.removeprefix("@(").removesuffix(")").split(",")
    ]
    if listed != data["machineVariables"]:
        found.append(
            f"$MachineVariables is {listed}, the specification says {data['machineVariables']}"
        )
    return found
