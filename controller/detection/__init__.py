"""Detection methods: how to tell whether an application is really installed on a Windows machine.

``rules`` holds the one wire format shared by the Package manifest kind, the controller's detection
document (which receives the rules as a JSON parameter) and the sandbox's simulated agent.
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
    compare_versions,
    describe,
    parse_rule,
    parse_version,
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
    "compare_versions",
    "describe",
    "parse_rule",
    "parse_version",
    "rules_from_json",
    "rules_to_json",
]
