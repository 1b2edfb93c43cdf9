"""Whatever the bytes, the loader answers with a DesiredState or InvalidDesiredState, nothing else.

Bounded: a few hundred small examples per property, no deadline (CI machines vary).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.manifests import DesiredState, InvalidDesiredState, load_desired_state

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

# Fragments that steer random text into the YAML parser's interesting corners.
TOKENS = [
    "apiVersion: fleet-controller/v1alpha1\n", "kind: Activation\n", "kind: TagSync\n",
    "metadata:\n  name: x\n", "spec:\n", "  iamRole: R\n", "  tags:\n", "    K: v\n",
    "---\n", "- ", ": ", "\n", "  ", "\t", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!str ",
    "!Ref ", "? ", "|\n", ">\n", "'", '"', "#", "%YAML 1.1\n", "~", "null", "yes", "0x1F", "1e9",
    "2024-01-01", "\x00", "\ufeff", "é", "\\",
]  # fmt: skip


def load_text(content: bytes) -> DesiredState | InvalidDesiredState:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "fuzz.yaml").write_bytes(content)
        try:
            return load_desired_state(directory)
        except InvalidDesiredState as error:
            for item in error.errors:
                assert item.line is None or item.line >= 1
                assert item.message
            return error


@FUZZ
@given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=60))
def test_yamlish_text_never_crashes(parts: list[str]) -> None:
    load_text("".join(parts).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(content: bytes) -> None:
    load_text(content)


VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from([
    "iamRole", "registrationLimit", "validFor", "renewBefore", "rotateAtRegistrationPercent",
    "gracePeriod", "defaultInstanceName", "description", "tags", "publish", "workspaces", "match",
    "copyTags", "attributes", "staticTags", "parameterName", "include", "rename", "states",
])  # fmt: skip


@FUZZ
@given(
    kind=st.sampled_from(["Activation", "TagSync"]) | st.text(max_size=10),
    name=st.sampled_from(["corp", "a-b"]) | st.text(max_size=10),
    spec=st.dictionaries(FIELDS, VALUES, max_size=6),
)
def test_structured_manifests_never_crash(kind: str, name: str, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": "fleet-controller/v1alpha1", "kind": kind, "metadata": {"name": name},
           "spec": spec}  # fmt: skip
    outcome = load_text(yaml.safe_dump_all([doc, doc]).encode())
    # The same document twice is always at least a duplicate-name error when it is valid.
    assert isinstance(outcome, InvalidDesiredState)
