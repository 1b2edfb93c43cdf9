"""Load a desired-state directory and validate it as a whole.

Nothing is applied from a revision with any error, so this collects every error - per document,
per kind (unique names), across documents (each spec model's ``check_set``) and about every file a
manifest names (containment and size, see ``SpecModel.referenced_files``) - and raises them
together. Bad input of any sort surfaces as InvalidDesiredState, never as another exception.

A valid revision's digest covers the YAML and every referenced file's content, so changing an
installer changes the revision ID. With ``build`` (plan, apply, run) the specs then build what
they need from those files (a Package's zips, through the build cache), so kinds never read the
desired-state tree after this returns.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from controller.containment import ContainedFile, Containment, Refused
from controller.contract.registry import spec_models
from controller.manifests.common import BuildProblems, SpecModel
from controller.manifests.document import Manifest, format_path, parse_document
from controller.manifests.errors import InvalidDesiredState, ManifestError
from controller.manifests.placeholders import Placeholder, placeholders_in
from controller.manifests.source import FieldPath, SourceDocument, discover, read_file

if TYPE_CHECKING:
    from controller.packaging.cache import BuildCache

FileMap = Mapping[FieldPath, ContainedFile]


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

    @property
    def placeholders(self) -> list[Placeholder]:
        """Every value ``export`` left to fill in, in file order."""
        return [p for m in self.manifests for p in m.placeholders]

    def get(self, kind: str, name: str) -> Manifest | None:
        return next((m for m in self.manifests if m.kind == kind and m.name == name), None)


def load_desired_state(
    directory: str | Path, *, build: bool = True, cache: BuildCache | None = None
) -> DesiredState:
    """Read every manifest under ``directory``; raise InvalidDesiredState listing all errors.

    ``build`` False checks and hashes referenced files without building anything (validate).
    ``cache`` defaults to the build cache at its default location.
    """
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
    containment = Containment(root)
    for path in paths:
        relative = path.relative_to(root).as_posix()
        try:
            containment.manifest_file(path)
        except Refused as refused:
            errors.append(ManifestError(str(root / relative), None, str(refused)))
            continue
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
                manifests.append(_with_placeholders(manifest, document))

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
    files = [_referenced_files(manifest, containment, errors) for manifest in manifests]
    if errors:
        raise InvalidDesiredState(errors)
    if build and cache is None:
        from controller.packaging.cache import BuildCache

        cache = BuildCache.default()
    _digest_files(digest, files, _hasher(cache))
    if build:
        assert cache is not None
        manifests = _build(manifests, files, cache)
    return DesiredState(root, tuple(manifests), len(paths), digest.hexdigest())


def _referenced_files(
    manifest: Manifest, containment: Containment, errors: list[ManifestError]
) -> tuple[Manifest, dict[FieldPath, ContainedFile]]:
    """Resolve every file ``manifest`` names inside the root; refusals become located errors."""
    base = Path(manifest.source.file).parent
    found: dict[FieldPath, ContainedFile] = {}
    for path, relative in manifest.spec.referenced_files():
        try:
            found[path] = containment.file(base, relative)
        except Refused as refused:
            hint = (
                "; files are relative to the manifest file"
                if "does not exist" in str(refused)
                else ""
            )
            errors.append(manifest.spec_error(path, f"{relative:.120} {refused}{hint}"))
    if len(found) == len(manifest.spec.referenced_files()):
        errors.extend(
            manifest.spec_error(problem.path, problem.message)
            for problem in manifest.spec.file_problems(found)
        )
    return manifest, found


def _hasher(cache: BuildCache | None) -> Callable[[ContainedFile], str]:
    from controller.packaging.cache import sha256_of

    return cache.file_sha256 if cache is not None else sha256_of


def _digest_files(
    digest: hashlib._Hash,
    files: Sequence[tuple[Manifest, FileMap]],
    sha256: Callable[[ContainedFile], str],
) -> None:
    """Fold each referenced file's content into the revision digest, once per file."""
    first: dict[str, tuple[Manifest, FieldPath, ContainedFile]] = {}
    for manifest, found in files:
        for path, file in found.items():
            first.setdefault(file.relative, (manifest, path, file))
    for relative in sorted(first):
        manifest, path, file = first[relative]
        try:
            content = sha256(file)
        except Refused as refused:
            error = manifest.spec_error(path, f"{relative} {refused}")
            raise InvalidDesiredState([error]) from None
        digest.update(f"file\0{relative}\0{file.size}\0{content}\0".encode())


def _build(
    manifests: list[Manifest], files: Sequence[tuple[Manifest, FileMap]], cache: BuildCache
) -> list[Manifest]:
    """Each manifest with what its spec built from its files (unchanged when it builds nothing)."""
    errors: list[ManifestError] = []
    by_manifest = {id(manifest): found for manifest, found in files}
    built: list[Manifest] = []
    for manifest in manifests:
        try:
            output = manifest.spec.build(by_manifest[id(manifest)], cache)
        except BuildProblems as problems:
            errors.extend(manifest.spec_error(p.path, p.message) for p in problems.problems)
            continue
        except Refused as refused:
            errors.append(manifest.spec_error((), f"cannot be built: {refused}"))
            continue
        built.append(manifest if output is None else replace(manifest, built=output))
    if errors:
        raise InvalidDesiredState(errors)
    return built


def _with_placeholders(manifest: Manifest, document: SourceDocument) -> Manifest:
    found = tuple(
        Placeholder(document.file, document.line_of(path), manifest.ref, format_path(path), value)
        for path, value in placeholders_in(document.data.get("spec"), ("spec",))
    )
    return replace(manifest, placeholders=found) if found else manifest


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
