"""Hand-built desired and live state for calling a kind's pure ``diff`` (no sandbox, no AWS).

Manifests go through their kind's spec model (the same validation ``validate`` applies), so a
builder can only make what a manifest author could write; live state is the kind's own dataclasses,
filled in by hand the way its ``observe`` would fill them from AWS's answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.contract import MANIFEST_TAG, OWNER_TAG, Context
from controller.contract.registry import spec_models
from controller.manifests import DesiredState, Manifest
from controller.manifests.document import SourceLocation

CONTROLLER_ID = "unit-controller"
SOMEONE_ELSE = "another-controller"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def manifest(kind: str, name: str, spec: dict[str, Any], built: Any = None) -> Manifest:
    """One valid manifest of ``kind``; a spec a manifest author could not write fails here."""
    parsed = spec_models()[kind].model_validate(spec)
    problems = parsed.problems()
    assert not problems, problems
    return Manifest(kind, name, {}, parsed, SourceLocation(f"{name}.yaml", 1), built)


def desired_state(*manifests: Manifest) -> DesiredState:
    return DesiredState(Path("desired"), tuple(manifests), len(manifests), "digest")


def context(
    *manifests: Manifest, now: datetime = NOW, controller_id: str = CONTROLLER_ID
) -> Context:
    return Context(
        controller_id=controller_id,
        region="us-east-1",
        now=now,
        desired=desired_state(*manifests),
    )


def owned_by(kind: str, name: str, controller_id: str = CONTROLLER_ID) -> dict[str, str]:
    """The tags the controller puts on what it creates for manifest ``kind/name``."""
    return {OWNER_TAG: controller_id, MANIFEST_TAG: f"{kind}/{name}"}
