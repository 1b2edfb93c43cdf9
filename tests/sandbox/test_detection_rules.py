"""The shared detection-rule model: JSON round trips, strictness, and the sandbox's evaluation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.detection import (
    AllOf,
    AnyOf,
    FileRule,
    RuleError,
    compare_versions,
    describe,
    parse_rule,
    rules_from_json,
    rules_to_json,
)
from fleet_sandbox.detection import apply_effects, evaluate, parse_effects, remove_effects
from fleet_sandbox.state import AgentModel

GUID = "{1A2B3C4D-0000-1111-2222-333344445555}"

EVERY_RULE_TYPE = [
    {"type": "file", "path": "C:\\App\\app.exe", "check": "exists"},
    {
        "type": "file",
        "path": "C:\\App\\app.exe",
        "check": "version",
        "operator": "ge",
        "value": "1.2.3",
    },
    {"type": "file", "path": "C:\\App\\app.exe", "check": "size", "operator": "gt", "value": 1024},
    {"type": "folder", "path": "C:\\App"},
    {"type": "registry", "hive": "HKLM", "key": "SOFTWARE\\Acme", "check": "exists"},
    {
        "type": "registry",
        "hive": "HKCU",
        "key": "SOFTWARE\\Acme",
        "valueName": "Edition",
        "check": "string",
        "operator": "eq",
        "value": "Pro",
    },
    {
        "type": "registry",
        "hive": "HKLM",
        "key": "SOFTWARE\\Acme",
        "valueName": "Build",
        "check": "integer",
        "operator": "ge",
        "value": 42,
        "use32BitView": True,
    },
    {
        "type": "registry",
        "hive": "HKU",
        "key": "S-1-5-18\\Software\\Acme",
        "valueName": "DisplayVersion",
        "check": "version",
        "operator": "lt",
        "value": "2.0",
    },
    {"type": "service", "name": "AcmeSvc", "check": "exists"},
    {"type": "service", "name": "AcmeSvc", "check": "state", "value": "Running"},
    {"type": "service", "name": "AcmeSvc", "check": "startType", "value": "Automatic"},
    {"type": "msi", "productCode": GUID},
    {"type": "msi", "productCode": GUID, "operator": "eq", "version": "5.1"},
    {"type": "script", "script": "if (Test-Path C:\\App) { 'yes' }"},
]


@pytest.mark.parametrize("data", EVERY_RULE_TYPE, ids=lambda d: f"{d['type']}-{d.get('check', '')}")
def test_every_rule_type_round_trips_through_json(data):
    rule = parse_rule(data)
    text = rules_to_json(rule)
    assert rules_from_json(text) == rule
    assert (
        json.loads(text) == {"use32BitView": False, **data} if data["type"] == "registry" else data
    )


def test_nested_groups_round_trip_and_serialise_stably():
    rule = parse_rule(
        {
            "allOf": [
                EVERY_RULE_TYPE[0],
                {"anyOf": [EVERY_RULE_TYPE[3], {"allOf": EVERY_RULE_TYPE[8:]}]},
            ]
        }
    )
    assert isinstance(rule, AllOf) and isinstance(rule.all_of[1], AnyOf)
    text = rules_to_json(rule)
    assert rules_to_json(rules_from_json(text)) == text
    assert ", " not in text and ": " not in text  # compact separators
    assert text.index('"check"') < text.index('"path"')  # keys sorted


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"type": "registry", "hive": "HKXX", "key": "a", "check": "exists"},
            "hive: Input should be 'HKLM'",
        ),
        (
            {"type": "file", "path": "a", "check": "version", "operator": "approx", "value": "1"},
            "operator: Input should be 'eq'",
        ),
        ({"type": "driver", "path": "a"}, "unknown rule type 'driver'"),
        ({"path": "a"}, "a rule needs 'type'"),
        (
            {"type": "file", "path": "a", "check": "hash"},
            "check: Input should be 'exists', 'version' or 'size'",
        ),
        (
            {"type": "file", "path": "a", "check": "exists", "colour": "red"},
            "unknown field 'colour'",
        ),
        (
            {"allOf": [{"type": "folder", "path": "a", "recurse": True}]},
            "allOf[0].recurse: unknown field",
        ),
        ({"allOf": []}, "allOf: List should have at least 1 item"),
        (
            {"type": "file", "path": "a", "check": "version", "operator": "ge"},
            "needs both 'operator' and 'value'",
        ),
        (
            {"type": "file", "path": "a", "check": "version", "operator": "ge", "value": "one"},
            "dotted numeric version",
        ),
        (
            {"type": "file", "path": "a", "check": "size", "operator": "ge", "value": "12"},
            "non-negative integer",
        ),
        (
            {"type": "service", "name": "s", "check": "state", "value": "Dancing"},
            "must be one of Running",
        ),
        ({"type": "msi", "productCode": "not-a-guid"}, "productCode: String should match pattern"),
        ({"type": "msi", "productCode": GUID, "operator": "eq"}, "both 'operator' and 'version'"),
    ],
)
def test_invalid_rules_are_clear_errors(data, expected):
    with pytest.raises(RuleError) as raised:
        parse_rule(data)
    assert expected in str(raised.value)


def test_invalid_json_is_a_rule_error():
    with pytest.raises(RuleError, match="not valid JSON"):
        rules_from_json("{not json")


def test_descriptions_are_stable_and_human():
    assert describe(parse_rule(EVERY_RULE_TYPE[1])) == "file C:\\App\\app.exe version ge 1.2.3"
    assert describe(parse_rule(EVERY_RULE_TYPE[6])) == (
        "registry HKLM\\SOFTWARE\\Acme value Build integer ge 42 (32-bit view)"
    )
    assert describe(parse_rule(EVERY_RULE_TYPE[12])) == f"msi {GUID} version eq 5.1"


def test_versions_compare_numerically_with_missing_parts_as_zero():
    assert compare_versions("1.10", "1.9") == 1
    assert compare_versions("1.2", "1.2.0.0") == 0
    assert compare_versions("2", "10") == -1
    assert compare_versions("1.x", "1") is None


@given(st.text(min_size=1), st.text(), st.text(min_size=1))
def test_arbitrary_strings_round_trip(path, value, script):
    rule = AllOf(
        allOf=[
            FileRule(type="file", path=path, check="exists"),
            parse_rule(
                {
                    "type": "registry",
                    "hive": "HKLM",
                    "key": path,
                    "valueName": value,
                    "check": "string",
                    "operator": "eq",
                    "value": value,
                }
            ),
            parse_rule({"type": "script", "script": script}),
        ]
    )
    text = rules_to_json(rule)
    assert text.isascii()
    assert rules_from_json(text) == rule


# --- the sandbox's evaluation against an agent model ---------------------------------------------


def _machine() -> AgentModel:
    agent = AgentModel()
    apply_effects(
        agent,
        parse_effects(
            {
                "files": [
                    {"path": "%ProgramFiles%\\Acme\\acme.exe", "version": "2.10.0", "size": 4096}
                ],
                "registry": [
                    {
                        "hive": "HKLM",
                        "key": "SOFTWARE\\Acme",
                        "valueName": "DisplayVersion",
                        "value": "2.10",
                    },
                    {
                        "hive": "HKLM",
                        "key": "SOFTWARE\\Acme",
                        "valueName": "Build",
                        "value": 7,
                        "use32BitView": True,
                    },
                ],
                "services": [{"name": "AcmeSvc", "state": "Stopped", "startType": "Manual"}],
                "msiProducts": [{"productCode": GUID.lower(), "version": "2.10.0"}],
                "scripts": [{"script": "Get-Acme", "exitCode": 0, "stdout": "found"}],
            }
        ),
    )
    return agent


@pytest.mark.parametrize(
    ("rule", "detected"),
    [
        ({"type": "file", "path": "c:/program files/ACME/acme.exe", "check": "exists"}, True),
        (
            {
                "type": "file",
                "path": "C:\\Program Files\\Acme\\acme.exe",
                "check": "version",
                "operator": "ge",
                "value": "2.9",
            },
            True,
        ),
        (
            {
                "type": "file",
                "path": "C:\\Program Files\\Acme\\acme.exe",
                "check": "size",
                "operator": "lt",
                "value": 100,
            },
            False,
        ),
        ({"type": "folder", "path": "C:\\Program Files\\Acme"}, True),
        ({"type": "folder", "path": "C:\\Program Files\\Other"}, False),
        (
            {
                "type": "registry",
                "hive": "HKLM",
                "key": "software\\acme",
                "valueName": "displayversion",
                "check": "version",
                "operator": "gt",
                "value": "2.9",
            },
            True,
        ),
        (
            {
                "type": "registry",
                "hive": "HKLM",
                "key": "SOFTWARE\\Acme",
                "valueName": "Build",
                "check": "integer",
                "operator": "eq",
                "value": 7,
            },
            False,
        ),
        (
            {
                "type": "registry",
                "hive": "HKLM",
                "key": "SOFTWARE\\Acme",
                "valueName": "Build",
                "check": "integer",
                "operator": "eq",
                "value": 7,
                "use32BitView": True,
            },
            True,
        ),
        ({"type": "service", "name": "acmesvc", "check": "state", "value": "Running"}, False),
        ({"type": "service", "name": "AcmeSvc", "check": "startType", "value": "Manual"}, True),
        ({"type": "msi", "productCode": GUID, "operator": "ge", "version": "2.10"}, True),
        ({"type": "script", "script": "Get-Acme"}, True),
        ({"type": "script", "script": "Get-Other"}, False),
        (
            {
                "anyOf": [
                    {"type": "folder", "path": "C:\\Nope"},
                    {"type": "service", "name": "AcmeSvc", "check": "exists"},
                ]
            },
            True,
        ),
        (
            {
                "allOf": [
                    {"type": "folder", "path": "C:\\Nope"},
                    {"type": "service", "name": "AcmeSvc", "check": "exists"},
                ]
            },
            False,
        ),
    ],
)
def test_sandbox_evaluates_rules_like_a_windows_machine(rule, detected):
    assert evaluate(parse_rule(rule), _machine()).detected is detected


def test_failure_reasons_name_the_failing_rule_and_what_was_found():
    finding = evaluate(
        parse_rule(
            {
                "allOf": [
                    {"type": "service", "name": "AcmeSvc", "check": "exists"},
                    {
                        "type": "file",
                        "path": "C:\\Program Files\\Acme\\acme.exe",
                        "check": "version",
                        "operator": "ge",
                        "value": "3.0",
                    },
                ]
            }
        ),
        _machine(),
    )
    assert not finding.detected
    assert finding.reasons == [
        "file C:\\Program Files\\Acme\\acme.exe version ge 3.0 (found version 2.10.0)"
    ]


def test_removing_effects_leaves_nothing_behind():
    agent = _machine()
    effects = parse_effects(
        {
            "files": [{"path": "%ProgramFiles%\\Acme\\acme.exe"}],
            "registry": [
                {"hive": "HKLM", "key": "SOFTWARE\\Acme", "valueName": "DisplayVersion"},
                {"hive": "HKLM", "key": "SOFTWARE\\Acme", "use32BitView": True},
            ],
            "services": [{"name": "AcmeSvc"}],
            "msiProducts": [{"productCode": GUID}],
            "scripts": [{"script": "Get-Acme"}],
        }
    )
    remove_effects(agent, effects)
    assert agent.files == {} and agent.registry == {} and agent.services == {}
    assert agent.msi_products == {} and agent.script_results == {}
