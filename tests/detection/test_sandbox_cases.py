"""The specification's case table run against the sandbox's evaluator, every case.

The sandbox implements SPEC.md on its own (it imports nothing from ``controller``); these tests
are what makes it an oracle: each case's machine is built through the sandbox's own machine-state
format, each rule travels as the JSON text the evaluator receives, and the verdict, the reasons and
the exit code with its message must be exactly what the specification says, for both actions.
"""

from __future__ import annotations

import json

import pytest

from fleet_sandbox import detection
from fleet_sandbox.effects import apply_effects, parse_machine
from fleet_sandbox.machine import AgentModel
from tests.detection.spec import Case, cases, observations, spec, template_matches

EXIT = {
    ("Install", "detected"): 0,
    ("Install", "not-detected"): 1,
    ("Uninstall", "detected"): 1,
    ("Uninstall", "not-detected"): 0,
}


def machine_of(case: Case) -> AgentModel:
    agent = AgentModel()
    apply_effects(agent, parse_machine(case.machine))
    return agent


def _outcome(action: str, verdict: str) -> dict[str, object]:
    for outcome in spec()["outcomes"]:
        if outcome["verdict"] == verdict and outcome["action"] in (action, "any"):
            return outcome
    raise AssertionError(f"the specification has no outcome for {action} {verdict}")


def _run(case: Case, action: str) -> tuple[int, str]:
    agent = machine_of(case)
    if case.agent_version and not detection.agent_version_ok(case.agent_version):
        return detection.run(None, None, agent)
    return detection.run(json.dumps(case.rule), action, agent)


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.name)
@pytest.mark.parametrize("action", ["Install", "Uninstall"])
def test_every_case_exits_and_says_what_the_specification_says(case: Case, action: str):
    code, output = _run(case, action)
    outcome = _outcome(action, case.verdict)
    assert code == outcome["exit"], output
    says = str(outcome["says"])
    if "{reasons}" in says:
        assert output == says.replace("{reasons}", "; ".join(case.reasons))
    else:
        assert output.startswith(says.split("{")[0]), output


@pytest.mark.parametrize(
    "case",
    [c for c in cases() if c.verdict not in ("invalid", "agent-too-old")],
    ids=lambda c: c.name,
)
def test_every_evaluable_case_has_its_verdict_and_reasons(case: Case):
    finding = detection.evaluate(detection.read_rules(json.dumps(case.rule)), machine_of(case))
    assert (finding.verdict, tuple(finding.reasons)) == (case.verdict, case.reasons)


def _leaf_observations(case: Case) -> list[tuple[str, str]]:
    """(rule type, observation) of every reason a case expects."""
    found = []
    for reason in case.reasons:
        kind = reason.split(" ", 1)[0]
        observed = reason[reason.rindex(" (") + 2 : -1]
        found.append((kind, observed))
    return found


def test_every_reason_a_case_expects_is_one_the_specification_lists():
    for case in cases():
        for kind, observed in _leaf_observations(case):
            says = [o["says"] for o in observations(kind)]
            assert any(template_matches(s, observed) for s in says), (case.name, observed)


def test_every_observation_the_specification_lists_is_pinned_by_a_case():
    seen = [(kind, observed) for case in cases() for kind, observed in _leaf_observations(case)]
    for kind, entry in spec()["ruleTypes"].items():
        for observation in entry["observations"]:
            assert any(k == kind and template_matches(observation["says"], o) for k, o in seen), (
                f"no case shows {kind}: {observation['says']!r}"
            )


def test_every_defect_of_issue_15_is_a_case():
    defects = {
        "hkcu-and-per-user-paths-read-the-system-account",
        "reg-dword-reads-negative",
        "reg-expand-sz-expanded",
        "crashing-script-counts-as-not-installed",
        "script-without-timeout",
        "msi-detected-by-uninstall-key-only",
        "reg-multi-sz-and-binary-compared-as-text",
        "no-bound-on-the-rules-size",
        "get-service-takes-wildcards",
        "wql-escaping",
        "version-digits-and-overflow",
        "runtime-errors-are-not-invalid-rules",
        "test-path-follows-providers-and-wildcards",
        "output-in-the-oem-code-page",
        "ssm-references-resolved-before-the-agent",
        "registry-views-only-redirect-redirected-keys",
        "agent-version-requirement",
    }
    covered = {case.covers for case in cases() if case.covers}
    assert covered == defects


def test_case_names_are_unique():
    names = [case.name for case in cases()]
    assert len(names) == len(set(names))
