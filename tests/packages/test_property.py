"""Rules and arguments are data: no string in them can change the script the document runs.

The evaluator reads ``detectionRules`` and ``action`` from environment variables (ENV_VAR
interpolation), so its text has no ``{{ }}`` substitution site at all; arbitrary strings in paths,
registry values and arguments only ever travel inside the JSON parameters, and come back equal.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.detection.document import (
    MARKER,
    association_parameters,
    content_hash,
    document_body,
    document_content,
    evaluator_script,
    script_text,
)
from controller.detection.rules import parse_rule, rules_from_json
from controller.kinds.association import normalize
from tests.packages.helpers import add_instance

SCRIPT = evaluator_script()
CONTENT = document_content()
HASH = content_hash()  # before any rule was made: the rules must never change it
# Any text a rule may carry (SPEC.md: no NUL, no lone surrogate, no {{ssm:/{{resolve: reference).
_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00{")
TEXT = st.text(alphabet=_CHARACTERS, max_size=200)
NONEMPTY = st.text(alphabet=_CHARACTERS, min_size=1, max_size=200)
# A key or file name: no separators, control or wildcard characters, no trailing dot or space.
_NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='\\/<>:"|?*%'),
    min_size=1,
    max_size=60,
).filter(lambda n: n[-1] not in " ." and n.split(".")[0].strip(" ").upper() not in _DEVICES)
_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{d}{n}" for d in ("COM", "LPT") for n in range(1, 10))}
PATHS = _NAME.map(lambda name: f"C:\\Program Files\\{name}")
KEYS = _NAME.map(lambda name: f"SOFTWARE\\{name}")


def _rule(path: str, key: str, value_name: str, value: str, script: str):
    return parse_rule(
        {
            "anyOf": [
                {"type": "file", "path": path, "check": "exists"},
                {"type": "folder", "path": path},
                {
                    "allOf": [
                        {
                            "type": "registry",
                            "hive": "HKLM",
                            "key": key,
                            "valueName": value_name,
                            "check": "string",
                            "operator": "eq",
                            "value": value,
                            "use32BitView": True,
                        },
                        {"type": "script", "script": script},
                    ]
                },
            ]
        }
    )


def test_the_script_has_no_substitution_site():
    assert "{{" not in SCRIPT and "}}" not in SCRIPT
    assert SCRIPT.startswith(f"# {MARKER}")
    assert script_text(CONTENT) == SCRIPT.rstrip("\n")
    # what DescribeDocument's Hash is for this content: its SHA-256, hex
    assert hashlib.sha256(CONTENT.encode("utf-8")).hexdigest() == HASH
    parameters = document_body()["parameters"]
    assert parameters["detectionRules"]["interpolationType"] == "ENV_VAR"
    assert parameters["action"]["interpolationType"] == "ENV_VAR"


@settings(max_examples=300, deadline=None)
@given(path=PATHS, key=KEYS, value_name=TEXT, value=TEXT, script=NONEMPTY, argument=TEXT)
def test_arbitrary_strings_never_reach_the_script_and_round_trip(
    path, key, value_name, value, script, argument
):
    rule = _rule(path, key, value_name, value, script)
    parameters = association_parameters(
        action="Install",
        package="Acme",
        version="",
        installation_type="Uninstall and reinstall",
        additional_arguments={"SSM_ARG": argument},
        rules=rule,
    )
    assert document_content() == CONTENT and content_hash() == HASH
    assert script_text(document_content()) == SCRIPT.rstrip("\n")
    assert rules_from_json(parameters["detectionRules"][0]) == rule
    assert json.loads(parameters["additionalArguments"][0]) == {"SSM_ARG": argument}
    # Every parameter value is plain ASCII JSON: nothing in it is interpreted on the way.
    assert parameters["detectionRules"][0].isascii()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=PATHS, value=TEXT, argument=TEXT)
def test_round_trip_through_the_sandbox(sandbox, path, value, argument):
    """The same through AWS's API: the association keeps the JSON as given, the document stays."""
    from controller.detection.document import document_name

    ssm = sandbox.client("ssm")
    name = document_name("property-test")
    if not ssm.list_documents(Filters=[{"Key": "Name", "Values": [name]}])["DocumentIdentifiers"]:
        ssm.create_document(Name=name, Content=CONTENT, DocumentType="Command")
        add_instance(1, {"App": "Acme"})
    rule = _rule(path, "SOFTWARE\\Acme", "Version", value, "Write-Output 1")
    parameters = association_parameters(
        action="Install",
        package="Acme",
        version="",
        installation_type="Uninstall and reinstall",
        additional_arguments={"SSM_ARG": argument},
        rules=rule,
    )
    created = ssm.create_association(
        Name=name, Parameters=parameters, Targets=[{"Key": "tag:App", "Values": ["Acme"]}]
    )["AssociationDescription"]
    described = ssm.describe_association(AssociationId=created["AssociationId"])
    live = normalize(described["AssociationDescription"])["Parameters"]
    assert live == parameters
    assert rules_from_json(live["detectionRules"][0]) == rule
    assert ssm.describe_document(Name=name)["Document"]["Hash"] == content_hash()
    ssm.delete_association(AssociationId=created["AssociationId"])
