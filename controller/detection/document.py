"""The controller's detection document: aws:configurePackage, then a fixed PowerShell evaluator.

The stock AWS-ConfigureAWSPackage reports Success when an installer exits 0 without installing.
This Command document (schema 2.2) takes the same parameters plus ``detectionRules`` (JSON) and
runs ``evaluator.ps1`` after the package step; the evaluator fails the run, naming the rule, when
the package is not detected after Install or still detected after Uninstall (exit 1), and also
when a rule cannot be evaluated (exit 4, never taken for "not installed"); SPEC.md beside this
file is what it does.

Rules are data: ``detectionRules`` and ``action`` are declared with ``interpolationType: ENV_VAR``
and the script reads them from the environment, so no value from a manifest ever becomes script
text. The document's content is a constant of the controller's version: its hash never depends on
rules, so associations change only when their own parameters do. It is compact JSON because SSM's
64 KB quota on a document counts its runtime parameters too.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from controller.detection.rules import AllOf, AnyOf, LeafRule, rules_to_json

MARKER = "FLEET-CONTROLLER-DETECTION-EVALUATOR"
NAME_PREFIX = "FleetController-ConfigurePackage"
INSTALLATION_TYPES = ("Uninstall and reinstall", "In-place update")
ACTIONS = ("Install", "Uninstall")
PACKAGE_NAME_PATTERN = (
    r"^arn:[a-z0-9][-.a-z0-9]{0,62}:[a-z0-9][-.a-z0-9]{0,62}:([a-z0-9][-.a-z0-9]{0,62})?:"
    r"([a-z0-9][-.a-z0-9]{0,62})?:(package|document)\/[a-zA-Z0-9/:.\-_]{1,128}$"
    r"|^[a-zA-Z0-9/:.\-_]{1,128}$"
)
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_\-.]")


def document_name(controller_id: str) -> str:
    """One detection document per controller id, so two controllers never share (or fight over)
    one. SSM document names allow ``a-zA-Z0-9_-.`` and 128 characters."""
    suffix = _NAME_CHARS.sub("-", controller_id) or "default"
    return f"{NAME_PREFIX}-{suffix}"[:128]


@cache
def evaluator_script() -> str:
    """The evaluator's text, shipped as package data beside this module."""
    return (
        resources.files("controller.detection")
        .joinpath("evaluator.ps1")
        .read_text(encoding="utf-8")
    )


def document_body() -> dict[str, Any]:
    script = evaluator_script()
    return {
        "schemaVersion": "2.2",
        "description": (
            "fleet-controller: install or uninstall a Distributor package, then verify it with "
            "detection rules (file, registry, service, MSI, script) and fail when the result "
            "disagrees with the action."
        ),
        "parameters": {
            "action": {
                "type": "String",
                "description": "(Required) Install or Uninstall.",
                "allowedValues": list(ACTIONS),
                "interpolationType": "ENV_VAR",
            },
            "name": {
                "type": "String",
                "description": "(Required) The Distributor package to install or uninstall.",
                "allowedPattern": PACKAGE_NAME_PATTERN,
            },
            "version": {
                "type": "String",
                "description": "(Optional) The package version; empty for the default version.",
                "default": "",
            },
            "installationType": {
                "type": "String",
                "description": "(Optional) Uninstall and reinstall, or In-place update.",
                "allowedValues": list(INSTALLATION_TYPES),
                "default": INSTALLATION_TYPES[0],
            },
            "additionalArguments": {
                "type": "String",
                "description": "(Optional) JSON passed to the install, uninstall or update script.",
                "default": "{}",
            },
            "detectionRules": {
                "type": "String",
                "description": "(Required) Detection rules as JSON (fleet-controller's format).",
                "interpolationType": "ENV_VAR",
            },
        },
        "mainSteps": [
            {
                "action": "aws:configurePackage",
                "name": "configurePackage",
                "onFailure": "exit",
                "inputs": {
                    "name": "{{ name }}",
                    "action": "{{ action }}",
                    "installationType": "{{ installationType }}",
                    "version": "{{ version }}",
                    "additionalArguments": "{{ additionalArguments }}",
                },
            },
            {
                "action": "aws:runPowerShellScript",
                "name": "detect",
                "precondition": {"StringEquals": ["platformType", "Windows"]},
                "inputs": {"runCommand": script.splitlines(), "timeoutSeconds": "600"},
            },
        ],
    }


@cache
def document_content() -> str:
    """The exact Content sent to CreateDocument/UpdateDocument (stable JSON)."""
    return json.dumps(document_body(), separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def content_hash() -> str:
    """What DescribeDocument's Hash (Sha256 of the content) is when the live document is ours."""
    return hashlib.sha256(document_content().encode("utf-8")).hexdigest()


def script_text(content: str) -> str:
    """The evaluator as a document's content carries it (for checking it never varies)."""
    body = json.loads(content)
    step = next(s for s in body["mainSteps"] if s["action"] == "aws:runPowerShellScript")
    return "\n".join(step["inputs"]["runCommand"])


def association_parameters(
    *,
    action: str,
    package: str,
    version: str,
    installation_type: str,
    additional_arguments: dict[str, str],
    rules: AllOf | AnyOf | LeafRule,
) -> dict[str, list[str]]:
    """The Parameters of an association that runs this document, every one given explicitly so
    the live association compares field for field."""
    return {
        "action": [action],
        "name": [package],
        "version": [version],
        "installationType": [installation_type],
        "additionalArguments": [arguments_json(additional_arguments)],
        "detectionRules": [rules_to_json(rules)],
    }


def arguments_json(arguments: dict[str, str]) -> str:
    """additionalArguments as Distributor takes it: a JSON object, here key-sorted and compact."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
