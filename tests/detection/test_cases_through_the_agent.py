"""The case table end to end: the controller's own detection document, created through the SSM
API, run by the sandbox's agents on one simulated machine per case, with the rules exactly as the
case gives them. The detection step's exit code and output are what the specification says, and
State Manager reports the exit code as the association's ErrorCode."""

from __future__ import annotations

import json

from controller.detection.document import document_content, document_name
from tests.detection.spec import Case, cases, spec
from tests.sandbox._ssm_helpers import add_instance, publish_package, run_agents


def _outcome(verdict: str) -> dict[str, object]:
    for outcome in spec()["outcomes"]:
        if outcome["verdict"] == verdict and outcome["action"] in ("Install", "any"):
            return outcome
    raise AssertionError(verdict)


def _expected(case: Case) -> tuple[int, str]:
    outcome = _outcome(case.verdict)
    says = str(outcome["says"]).replace("{reasons}", "; ".join(case.reasons))
    return int(str(outcome["exit"])), says


def test_every_case_through_the_detection_document(sandbox):
    ssm = sandbox.client("ssm")
    name = document_name("case-table")
    ssm.create_document(Name=name, Content=document_content(), DocumentType="Command")
    publish_package(sandbox, "Acme", "1.0.0")
    by_instance: dict[str, Case] = {}
    for number, case in enumerate(cases(), start=1):
        instance = add_instance(number)
        by_instance[instance] = case
        state = {"instanceId": instance, **case.machine}
        if case.agent_version:
            state["agentVersion"] = case.agent_version
        sandbox.admin.post("agent/state", state)
        ssm.create_association(
            Name=name,
            AssociationName=f"case-{number}",
            Parameters={
                "action": ["Install"],
                "name": ["Acme"],
                "version": [""],
                "installationType": ["Uninstall and reinstall"],
                "additionalArguments": ["{}"],
                "detectionRules": [json.dumps(case.rule)],
            },
            Targets=[{"Key": "InstanceIds", "Values": [instance]}],
        )
    runs = {run["instanceId"]: run for run in run_agents(sandbox)}
    assert set(runs) == set(by_instance)
    mismatches = []
    for instance, case in by_instance.items():
        detect = runs[instance]["steps"][1]
        code, says = _expected(case)
        output = detect["output"]
        if "{problem}" in says:  # the problem's wording is each implementation's own
            says, output = says.split("{")[0], output[: len(says.split("{")[0])]
        if (detect["exitCode"], output) != (code, says):
            mismatches.append((case.name, detect["exitCode"], detect["output"][:200]))
        status = ssm.describe_instance_associations_status(InstanceId=instance)[
            "InstanceAssociationStatusInfos"
        ][0]
        assert status["Status"] == ("Success" if code == 0 else "Failed")
        assert status.get("ErrorCode", "") == ("" if code == 0 else str(code))
    assert mismatches == []
