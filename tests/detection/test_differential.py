"""The controller's validation and the sandbox's evaluator, written apart from one specification,
agree on which rules are valid, for rules drawn from valid and broken pieces alike.

A disagreement is a bug in one of them: either ``validate`` lets through a rule the evaluator would
refuse on the machine (exit 2 on the whole fleet), or it refuses one the evaluator accepts.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.detection import RuleError, parse_rule, rules_from_json, rules_to_json
from fleet_sandbox.detection import InvalidRules, read_rules

# Per field: values the specification accepts, then values it refuses. A drawn leaf breaks at most
# one field, so most rules are valid or one step away from valid (where disagreements hide).
PATHS = (
    ["C:\\App\\app.exe", "c:/app/app.exe", "C:\\App\\", "%ProgramFiles%\\Acme\\a.exe",
     "%programfiles(x86)%\\Acme", "%SystemDrive%\\Acme", "C:\\[a].txt", "C:\\console",
     "C:\\Zürich\\ü.exe", "C:\\" + "a" * 255, "C:\\{{x}}", "C:\\a.b.c"],
    ["%APPDATA%\\Acme", "%TEMP%\\x", "%ProgramFiles%Acme", "%%\\x", "C:", "C:\\", "C:x",
     "\\\\server\\share\\x", "\\\\?\\C:\\x", "Acme\\a.exe", "HKLM:\\SOFTWARE", "C:\\a\\..\\b",
     "C:\\a\\.\\b", "C:\\a\\\\b", "C:\\a*", "C:\\a?", "C:\\a.", "C:\\a ", "C:\\con", "C:\\CON.txt",
     "C:\\com1\\x", "C:\\a\tb", "C:\\a%b", "C:\\" + "a" * 256, "C:\\{{ssm:/x}}", "C:\\{{ SSM:/x}}", "", 5],
)  # fmt: skip
KEYS = (
    ["SOFTWARE\\Acme", "software\\acme", "SYSTEM\\CurrentControlSet", "SOFTWARE/Acme",
     "SOFTWARE\\" + "k" * 255, "SOFTWARE\\WOW6432Node\\Acme"],
    ["HKLM\\SOFTWARE", "hkey_local_machine\\x", "Registry::HKLM", "\\SOFTWARE", "SOFTWARE\\",
     "SOFTWARE\\\\Acme", "SOFTWARE\\a\x01b", "", "SOFTWARE\\" + "k" * 256, "HKCU:\\x"],
)  # fmt: skip
VERSIONS = (
    ["1", "1.2", " 1.2 ", "1.2.3.4.5.6.7.8", "123456789", "1.2\n", "0.0"],
    ["1.2.3.4.5.6.7.8.9", "1234567890", "1.\u0662", "1.x", "", "1..2", ".1", "1.", "v1", 1],
)  # fmt: skip
NUMBERS = ([0, 1, 2**32 - 1, 2**63 - 1], [-1, 2**64, True, 1.0, "5"])
BIG_NUMBERS = ([0, 2**63, 2**64 - 1], [-1, 2**64, False, 2.5])
OPERATORS = (["eq", "ne", "gt", "ge", "lt", "le"], ["approx", "EQ", None])
TEXT = (
    ["Pro", "", "x" * 20, "{{x}}", "O'Brien", "{{ssm}}", "{ {ssm:x}}"],
    ["{{resolve:ssm:/x}}", "{{ SSM :x}}", "{{Ssm-Secure:/x}}", "\ud800", 5],
)


@st.composite
def leaves(draw):
    kind = draw(st.sampled_from(["file", "folder", "registry", "service", "msi", "script"]))
    fields = {
        "file": ["path", "check", "operator", "value", "extra"],
        "folder": ["path", "extra"],
        "registry": [
            "hive",
            "key",
            "check",
            "operator",
            "value",
            "valueName",
            "use32BitView",
            "extra",
        ],
        "service": ["name", "check", "value", "extra"],
        "msi": ["productCode", "operator", "version", "extra"],
        "script": ["script", "timeoutSeconds", "extra"],
    }[kind]
    broken = draw(st.sampled_from([None, None, None, *fields, "type"]))

    def pick(field, choices):
        valid, invalid = choices
        return draw(st.sampled_from(invalid if field == broken else valid))

    rule: dict[str, object] = {"type": pick("type", ([kind], ["bogus", kind.upper()]))}
    if kind in ("file", "folder"):
        rule["path"] = pick("path", PATHS)
    if kind == "file":
        check = pick("check", (["exists", "version", "size"], ["hash", "Exists"]))
        rule["check"] = check
        if check in ("version", "size") or broken == "operator":
            rule["operator"] = pick("operator", OPERATORS)
        if check in ("version", "size") or broken == "value":
            rule["value"] = pick("value", VERSIONS if check == "version" else NUMBERS)
    if kind == "registry":
        rule["hive"] = pick("hive", (["HKLM"], ["HKCU", "HKU", "HKCR", "HKCC", "hklm"]))
        rule["key"] = pick("key", KEYS)
        check = pick("check", (["exists", "string", "integer", "version"], ["number"]))
        rule["check"] = check
        if check != "exists" or draw(st.booleans()) or broken == "valueName":
            rule["valueName"] = pick(
                "valueName", (["", "DisplayVersion", "x" * 100], ["a\x00b", 3])
            )
        if draw(st.booleans()) or broken == "use32BitView":
            rule["use32BitView"] = pick("use32BitView", ([True, False], [1, "true"]))
        if check != "exists" or broken in ("operator", "value"):
            rule["operator"] = pick("operator", OPERATORS)
            values = {"string": TEXT, "integer": BIG_NUMBERS, "version": VERSIONS, "exists": TEXT}
            rule["value"] = pick("value", values.get(check, TEXT))
    if kind == "service":
        rule["name"] = pick(
            "name",
            (["AcmeSvc", "Acme*", "O'Brien", "x" * 256], ["a/b", "a\\b", "", "x" * 257, "a\tb"]),
        )
        check = pick("check", (["exists", "state", "startType"], ["status"]))
        rule["check"] = check
        if check != "exists" or broken == "value":
            allowed = {"state": ["Running", "StopPending"], "startType": ["Automatic", "Disabled"]}
            rule["value"] = pick(
                "value", (allowed.get(check, ["Running"]), ["Boot", "running", None])
            )
    if kind == "msi":
        rule["productCode"] = pick(
            "productCode",
            (["{1A2B3C4D-0000-1111-2222-333344445555}", "{1a2b3c4d-0000-1111-2222-333344445555}"],
             ["1A2B3C4D-0000-1111-2222-333344445555", "{x}", 5]),
        )  # fmt: skip
        if draw(st.booleans()) or broken in ("operator", "version"):
            if broken != "version":
                rule["operator"] = pick("operator", OPERATORS)
            if broken != "operator" or draw(st.booleans()):
                rule["version"] = pick("version", VERSIONS)
    if kind == "script":
        rule["script"] = pick(
            "script",
            (["Get-Acme", "x" * 12000, "{{x}}"], ["", "a\x00b", "{{ssm:/x}}", "x" * 12300]),
        )
        if draw(st.booleans()) or broken == "timeoutSeconds":
            rule["timeoutSeconds"] = pick(
                "timeoutSeconds", ([1, 60, 300, 250], [301, 0, True, 60.0])
            )
    if broken == "extra":
        rule["extra"] = 1
    return rule


def _groups(members: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    kinds = st.sampled_from(["allOf", "anyOf"])
    lists = st.lists(members, min_size=1, max_size=3) | st.just([])
    return st.tuples(kinds, lists).map(lambda pair: {pair[0]: pair[1]})


RULES = st.recursive(leaves(), _groups, max_leaves=6)


def _controller_accepts(data: object) -> bool:
    try:
        parse_rule(data)
    except RuleError:
        return False
    return True


def _sandbox_accepts(text: str) -> bool:
    try:
        read_rules(text)
    except InvalidRules:
        return False
    return True


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RULES)
def test_the_controller_and_the_sandbox_accept_the_same_rules(data):
    accepted = _controller_accepts(data)
    # The evaluator receives what the controller sends; a refused rule is never sent, so give the
    # sandbox the rule as an author (or a hand-made association) would write it.
    text = rules_to_json(parse_rule(data)) if accepted else json.dumps(data)
    assert _sandbox_accepts(text) == accepted, (data, accepted)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        '{"allOf":' + "[" * 3000 + "]" * 3000 + "}",
        '{"a":' * 900 + "1" + "}" * 900,
    ],
    ids=["lists", "group-of-lists", "objects"],
)
def test_hostile_nesting_is_refused_by_both_not_a_crash(text):
    with pytest.raises(RuleError, match="nest"):
        rules_from_json(text)
    with pytest.raises(InvalidRules, match="nest"):
        read_rules(text)
