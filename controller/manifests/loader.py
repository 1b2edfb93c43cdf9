"""Load a desired-state directory and validate it as a whole.

Nothing is applied from a revision with any error, so this collects every error - per document,
per kind (unique names) and across documents (each spec model's ``check_set``) - and raises them
together. Bad input of any sort surfaces as InvalidDesiredState, never as another exception.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.contract.registry import spec_models
from controller.manifests.common import SpecModel
from controller.manifests.document import Manifest, parse_document
from controller.manifests.errors import InvalidDesiredState, ManifestError
from controller.manifests.source import SourceDocument, discover, read_file


@dataclass(frozen=True)
class DesiredState:
    """A valid revision: every manifest, how many files it came from and a digest to report."""

    directory: Path
    manifests: tuple[Manifest, ...]
    files: int
    digest: str

    def of_kind(self, kind: str) -> list[Manifest]:
        """Manifests of ``kind`` sorted by name (empty for a known kind with none)."""
        return sorted((m for m in self.manifests if m.kind == kind), key=lambda m: m.name)

    def get(self, kind: str, name: str) -> Manifest | None:
        return next((m for m in self.manifests if m.kind == kind and m.name == name), None)


def load_desired_state(directory: str | Path) -> DesiredState:
    """Read every manifest under ``directory``; raise InvalidDesiredState listing all errors."""
    root = Path(directory)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise InvalidDesiredState(
            [ManifestError(str(root), None, f"desired-state directory {what}")]
        )
    paths = discover(root)
    if not paths:
        raise InvalidDesiredState(
            [
                ManifestError(
                    str(root), None, "holds no *.yaml or *.yml files (hidden ones are skipped)"
                )
            ]
        )

    errors: list[ManifestError] = []
    manifests: list[Manifest] = []
    identities: list[_Identity] = []
    digest = hashlib.sha256()
    for path in paths:
        relative = path.relative_to(root).as_posix()
        contents = read_file(path, str(root / relative))
        digest.update(f"{relative}\0{len(contents.content)}\0".encode())
        digest.update(contents.content)
        errors.extend(contents.errors)
        for document in contents.documents:
            identity = _identity(document)
            if identity is not None:
                identities.append(identity)
            manifest, problems = parse_document(document)
            errors.extend(problems)
            if manifest is not None:
                manifests.append(manifest)

    if not manifests and not errors:
        errors.append(
            ManifestError(str(root), None, "holds no manifests (every document is empty)")
        )
    errors.extend(_duplicate_names(identities))
    by_kind: dict[str, list[Manifest]] = defaultdict(list)
    for manifest in manifests:
        by_kind[manifest.kind].append(manifest)
    for spec_model in spec_models().values():
        if issubclass(spec_model, SpecModel):
            errors.extend(spec_model.check_set(by_kind))
    if errors:
        raise InvalidDesiredState(errors)
    return DesiredState(root, tuple(manifests), len(paths), digest.hexdigest())


@dataclass(frozen=True)
class _Identity:
    kind: str
    name: str
    file: str
    line: int


def _identity(document: SourceDocument) -> _Identity | None:
    """Kind and name of any document that states them, valid or not, so that duplicates are
    reported in the same run as the documents' other errors."""
    kind = document.data.get("kind")
    metadata = document.data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    return _Identity(kind, name, document.file, document.line_of(("metadata", "name")))


def _duplicate_names(identities: Sequence[_Identity]) -> list[ManifestError]:
    errors: list[ManifestError] = []
    first: dict[tuple[str, str], _Identity] = {}
    for identity in identities:  # in file order, then document order
        other = first.setdefault((identity.kind, identity.name), identity)
        if other is not identity:
            errors.append(
                ManifestError(
                    identity.file,
                    identity.line,
                    f"{identity.kind}/{identity.name} is already defined at {other.file}:"
                    f"{other.line}; names must be unique per kind",
                    identity.kind,
                    identity.name[:80],
                    "metadata.name",
                )
            )
    return errors
