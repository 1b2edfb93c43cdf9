"""Desired state: YAML manifests loaded into pydantic models and validated as a whole."""

from controller.manifests.common import (
    CONTROLLER_TAG_PREFIX,
    MAX_USER_TAGS,
    Duration,
    Problem,
    SpecModel,
    TagMap,
    format_duration,
    parse_duration,
    tag_key_problem,
    tag_value_problem,
)
from controller.manifests.document import API_VERSION, Manifest, SourceLocation
from controller.manifests.errors import InvalidDesiredState, ManifestError
from controller.manifests.loader import DesiredState, load_desired_state
from controller.manifests.specs.activation import ActivationSpec, PublishSpec
from controller.manifests.specs.tagsync import TagSyncSpec

__all__ = [
    "API_VERSION",
    "CONTROLLER_TAG_PREFIX",
    "MAX_USER_TAGS",
    "ActivationSpec",
    "DesiredState",
    "Duration",
    "InvalidDesiredState",
    "Manifest",
    "ManifestError",
    "Problem",
    "PublishSpec",
    "SourceLocation",
    "SpecModel",
    "TagMap",
    "TagSyncSpec",
    "format_duration",
    "load_desired_state",
    "parse_duration",
    "tag_key_problem",
    "tag_value_problem",
]
