"""The controller's rule model: one JSON wire format, strict, round-tripping every rule type."""

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
    parse_rule,
    rules_from_json,
    rules_to_json,
)

GUID = "{1A2B3C4D-0000-1111-2222-333344445555}"

EVERY_RULE_TYPE = [
    {"type": "file", "path": "C:\\App\\app.exe", "check": "exists"},
    {"type": "file", "path": "C:\\App\\app.exe", "check": "version", "operator": "ge", "value": "1.2.3"},
    {"type": "file", "path": "%ProgramFiles%\\App\\app.exe", "check": "size", "operator": "gt", "value": 1024},
    {"type": "folder", "path": "C:\\App"},
    {"type": "registry", "hive": "HKLM", "key": "SOFTWARE\\Acme", "check": "exists", "use32BitView": False},
    {
        "type": "registry",
        "hive": "HKLM",
        "key": "SOFTWARE\\Acme",
        "valueName": "Edition",
        "check": "string",
        "operator": "eq",
        "value": "Pro",
        "use32BitView": False,
    },
    {
        "type": "registry",
        "hive": "HKLM",
        "key": "SOFTWARE\\Acme",
        "valueName": "Build",
        "check": "integer",
        "operator": "ge",
        "value": 18446744073709551615,
        "use32BitView": True,
    },
    {"type": "service", "name": "AcmeSvc", "check": "exists"},
    {"type": "service", "name": "AcmeSvc", "check": "state", "value": "Running"},
    {"type": "service", "name": "AcmeSvc", "check": "startType", "value": "Automatic"},
    {"type": "msi", "productCode": GUID},
    {"type": "msi", "productCode": GUID, "operator": "eq", "version": "5.1"},
    {"type": "script", "script": "if (Test-Path C:\\App) { 'yes' }", "timeoutSeconds": 60},
]  # fmt: skip


@pytest.mark.parametrize("data", EVERY_RULE_TYPE, ids=lambda d: f"{d['type']}-{d.get('check', '')}")
def test_every_rule_type_round_trips_through_json(data):
    rule = parse_rule(data)
    text = rules_to_json(rule)
    assert rules_from_json(text) == rule
    assert json.loads(text) == data


def test_defaults_travel_explicitly():
    sent = json.loads(rules_to_json(parse_rule({"type": "script", "script": "Get-Acme"})))
    assert sent == {"type": "script", "script": "Get-Acme", "timeoutSeconds": 60}


def test_nested_groups_round_trip_and_serialise_stably():
    rule = parse_rule(
        {
            "allOf": [
                EVERY_RULE_TYPE[0],
                {"anyOf": [EVERY_RULE_TYPE[3], {"allOf": EVERY_RULE_TYPE[7:]}]},
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
            {"type": "file", "path": "C:\\a", "check": "version", "operator": "approx", "value": "1"},
            "operator: Input should be 'eq'",
        ),
        ({"path": "a"}, "a rule needs 'type'"),
        ({"type": "file", "path": "C:\\a", "check": "hash"}, "check: Input should be 'exists', 'version' or 'size'"),
        ({"allOf": []}, "allOf: List should have at least 1 item"),
        ({"type": "file", "path": "C:\\a", "check": "version", "operator": "ge"}, "value: check 'version' needs a value"),
        ({"type": "file", "path": "C:\\a", "check": "version", "value": "1"}, "operator: check 'version' needs an operator"),
        ({"type": "file", "path": "C:\\a", "check": "exists", "operator": "eq"}, "operator: check 'exists' takes no operator"),
        ({"type": "file", "path": "C:\\a", "check": "version", "operator": "ge", "value": "one"}, "dotted numeric version"),
        ({"type": "file", "path": "C:\\a", "check": "size", "operator": "ge", "value": "12"}, "value: a file size value must be an integer"),
        ({"type": "msi", "productCode": GUID, "operator": "eq"}, "version: an msi rule needs both"),
        ({"type": "registry", "hive": "HKXX", "key": "a", "check": "exists"}, "hive: hive must be 'HKLM', got 'HKXX'"),
        ({"allOf": [{"type": "folder", "path": "C:\\a", "recurse": True}]}, "allOf[0].recurse: unknown field"),
    ],
)  # fmt: skip
def test_invalid_rules_are_clear_errors_naming_the_field(data, expected):
    with pytest.raises(RuleError) as raised:
        parse_rule(data)
    assert expected in str(raised.value)


def test_invalid_json_is_a_rule_error():
    with pytest.raises(RuleError, match="not valid JSON"):
        rules_from_json("{not json")


def test_every_problem_is_reported_at_once():
    with pytest.raises(RuleError) as raised:
        parse_rule(
            {
                "allOf": [
                    {"type": "file", "path": "%APPDATA%\\x", "check": "exists"},
                    {"type": "registry", "hive": "HKCU", "key": "Software\\x", "check": "exists"},
                ]
            }
        )
    assert [path for path, _ in raised.value.problems] == ["allOf[0].path", "allOf[1].hive"]


# Names Windows reserves for devices (Microsoft's "Naming Files, Paths, and Namespaces"): a path
# component may not be one, with or without an extension; the product refuses them.
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10))}  # fmt: skip
_SAFE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='<>:"|?*%/\\{}'), min_size=1, max_size=30).filter(
    lambda c: c.strip(" .") == c and c not in (".", "..") and c.split(".")[0].rstrip(" ").upper() not in _WINDOWS_DEVICES
)  # fmt: skip
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="{\x00"), max_size=80
)


@given(
    components=st.lists(_SAFE, min_size=1, max_size=4),
    drive=st.sampled_from(["C:", "d:", "%ProgramFiles%", "%programdata%"]),
    value_name=_TEXT,
    value=_TEXT,
    script=_TEXT.filter(lambda s: s != ""),
)
def test_arbitrary_text_round_trips_as_ascii_json(components, drive, value_name, value, script):
    path = drive + "\\" + "\\".join(components)
    rule = AllOf(
        allOf=[
            FileRule(type="file", path=path, check="exists"),
            parse_rule(
                {
                    "type": "registry",
                    "hive": "HKLM",
                    "key": "SOFTWARE\\" + components[0],
                    "valueName": value_name,
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
