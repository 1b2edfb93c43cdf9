"""The detection document's diff, called with hand-built live documents
(controller/kinds/detection_document.py).

Wanted only while a package association needs it; created when missing, updated only when its
default holds another evaluator, promoted (not sent again) when the latest version already holds
this one; someone else's document of that name refused.
"""

from __future__ import annotations

import pytest

from controller.contract import Action, Severity
from controller.detection import document as detection
from controller.kinds.detection_document import (
    NAME,
    CreateDocument,
    DetectionDocumentKind,
    DetectionDocumentSpec,
    LiveDocument,
    PromoteVersion,
    UpdateDocument,
)
from controller.manifests import Manifest
from controller.manifests.document import SourceLocation
from tests.kinds.builders import context, owned_by

DOCUMENT = "fleet-controller-unit-controller-detection"
OURS = detection.content_hash()
OTHER = "0" * 64


def implied() -> Manifest:
    """The manifest the engine gives this implied kind (no YAML declares it)."""
    return Manifest("DetectionDocument", NAME, {}, DetectionDocumentSpec(), SourceLocation("", 0))


def diff(live: LiveDocument, wanted: bool = True):
    manifests = [implied()] if wanted else []
    return DetectionDocumentKind().diff(manifests, live, context(*manifests))


def test_the_document_holding_this_evaluator_is_equal():
    assert diff(LiveDocument(DOCUMENT, True, True, OURS)).operations == []


def test_a_missing_document_is_created_with_the_owner_tags():
    [operation] = diff(LiveDocument(DOCUMENT, False)).operations
    assert operation.action is Action.CREATE
    assert operation.payload == CreateDocument(
        name=DOCUMENT, tags=owned_by("DetectionDocument", NAME)
    )


def test_another_evaluator_as_the_default_is_one_update():
    [operation] = diff(LiveDocument(DOCUMENT, True, True, OTHER)).operations
    assert operation.action is Action.UPDATE
    assert operation.payload == UpdateDocument(name=DOCUMENT)
    assert [(c.field, c.before, c.after) for c in operation.changes] == [("hash", OTHER, OURS)]


def test_a_latest_version_already_holding_this_evaluator_is_promoted():
    stopped = LiveDocument(DOCUMENT, True, True, OTHER, latest_version="4", latest_hash=OURS)
    [operation] = diff(stopped).operations
    assert operation.payload == PromoteVersion(name=DOCUMENT, version="4")
    other_latest = LiveDocument(DOCUMENT, True, True, OTHER, latest_version="4", latest_hash=OTHER)
    [update] = diff(other_latest).operations
    assert update.payload == UpdateDocument(name=DOCUMENT)


@pytest.mark.parametrize("content", [OURS, OTHER])
def test_someone_elses_document_of_that_name_is_refused(content):
    plan = diff(LiveDocument(DOCUMENT, True, False, content))
    assert plan.operations == []
    [refusal] = plan.findings
    assert refusal.severity is Severity.ERROR and f"document {DOCUMENT} exists" in refusal.message


def test_not_wanted_without_a_package_association():
    assert diff(LiveDocument(DOCUMENT, False), wanted=False).operations == []
