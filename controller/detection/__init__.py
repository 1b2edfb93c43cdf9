"""Detection methods: how to tell whether an application is really installed on a Windows machine.

``SPEC.md`` (beside this file) is the one specification of what a rule means on a machine, with
its case table in ``spec.yaml``. ``rules`` holds the wire format shared by the Package manifest
kind and the controller's detection document (which receives the rules as a JSON parameter and
runs ``evaluator.ps1``); ``grammar`` refuses what LocalSystem could not evaluate truthfully.
"""

from controller.detection.rules import (
    AllOf,
    AnyOf,
    DetectionRule,
    FileRule,
    FolderRule,
    MsiRule,
    RegistryRule,
    RuleError,
    ScriptRule,
    ServiceRule,
    parse_rule,
    rules_from_json,
    rules_to_json,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "DetectionRule",
    "FileRule",
    "FolderRule",
    "MsiRule",
    "RegistryRule",
    "RuleError",
    "ScriptRule",
    "ServiceRule",
    "parse_rule",
    "rules_from_json",
    "rules_to_json",
]
