"""Reading manifest files: safe YAML with a source line for every mapping key and sequence item.

Desired state arrives from pull requests, so the reader treats every file as hostile: it never
constructs arbitrary objects (safe tags only), refuses what YAML would silently accept but a
reviewer would not expect (duplicate keys), and turns every bad input - wrong encoding, tabs,
oversized files, runaway nesting, alias bombs - into a located error instead of a crash or a hang.

The composer is PyYAML's (it keeps aliases as shared nodes, so composing is cheap even for a
"billion laughs" file); converting nodes to plain data is ours, because that is where aliases are
expanded and must be counted, and where keys get their lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from controller.manifests.errors import ManifestError

MAX_FILE_BYTES = 1024 * 1024
"""Per-file cap. The largest real fleet's desired state is a few hundred KiB across many files."""

MAX_DEPTH = 32
"""Nesting bound for mappings and sequences; the deepest schema needs about six levels."""

MAX_ALIAS_NODES = 10_000
"""How many nodes aliases may add to a document (each use of an alias re-counts its subtree)."""

YAML_SUFFIXES = (".yaml", ".yml")

FieldPath = tuple[str | int, ...]
"""A location inside a document: mapping keys and sequence indexes from the root."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
)


@dataclass(frozen=True)
class SourceIssue:
    """A problem inside a document that still lets the rest of it be validated."""

    path: FieldPath
    line: int
    message: str


@dataclass(frozen=True)
class SourceDocument:
    """One YAML document that is a mapping, as plain data plus where each part came from."""

    file: str
    index: int
    line: int
    data: dict[str, Any]
    lines: Mapping[FieldPath, int]
    issues: tuple[SourceIssue, ...] = ()

    def line_of(self, path: FieldPath) -> int:
        """The line of ``path``, or of its nearest present ancestor (a missing field's parent)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.line


@dataclass
class FileContents:
    """What one file yielded: its bytes (for the digest), its documents, and fatal errors."""

    content: bytes
    documents: list[SourceDocument] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)


def discover(directory: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` regular file under ``directory``, sorted by relative path.

    Hidden directories and hidden files (``.git``, ``.github``, ``.pre-commit-config.yaml``) are
    skipped so a repository root can serve as the desired-state directory. Symlinked directories
    are not followed (no cycles).
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(YAML_SUFFIXES):
                continue
            path = Path(root) / name
            if path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def read_file(path: Path, display: str) -> FileContents:
    """Read and parse one file; never raises for bad content (errors are returned)."""
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return FileContents(
            b"", errors=[ManifestError(display, None, f"cannot read: {exc.strerror}")]
        )
    result = FileContents(content)
    if len(content) > MAX_FILE_BYTES:
        result.errors.append(
            ManifestError(
                display,
                None,
                f"file is larger than {MAX_FILE_BYTES} bytes (1 MiB), the limit per manifest file;"
                " split it into several files",
            )
        )
        return result
    text = _decode(content, display, result.errors)
    if text is not None:
        _parse(text, display, result)
    return result


def _decode(content: bytes, display: str, errors: list[ManifestError]) -> str | None:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        errors.append(
            ManifestError(
                display,
                line,
                f"not UTF-8 text (byte 0x{content[exc.start]:02x} at offset {exc.start});"
                " manifests must be UTF-8 encoded YAML",
            )
        )
        return None


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _AliasNode(Node):
    """A use of an alias (``*name``): the anchored node plus where the alias itself was written."""

    id = "alias"

    def __init__(self, target: Node, start_mark: Any, end_mark: Any) -> None:
        super().__init__(target.tag, target, start_mark, end_mark)
        self.target = target


class _ComposerMixin(Composer):
    """PyYAML's composer, refusing to nest deeper than MAX_DEPTH (it recurses per level) and
    keeping each alias use as its own node, so expansion can be counted and located."""

    byte_positions = False  # does a ReaderError's position count bytes (libyaml) or characters?
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):  # type: ignore[attr-defined]
            event = self.peek_event()  # type: ignore[attr-defined]
            target = super().compose_node(parent, index)
            if target is None:
                return None
            return _AliasNode(target, event.start_mark, event.end_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)  # type: ignore[attr-defined]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _PyLoader(_ComposerMixin, Reader, Scanner, Parser, SafeConstructor, Resolver):
    """Pure-Python events: the fallback when PyYAML was built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


_LOADERS: list[type[_ComposerMixin]] = [_PyLoader]

if yaml.__with_libyaml__:  # PyYAML wheels ship libyaml: events an order of magnitude faster
    from yaml._yaml import CParser

    class _CLoader(_ComposerMixin, CParser, SafeConstructor, Resolver):
        """libyaml's events, our composer: same nodes, a fraction of the time."""

        byte_positions = True

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _LOADERS.insert(0, _CLoader)

LOADER: type[_ComposerMixin] = _LOADERS[0]
"""The loader in use; tests run the reader with every entry of ``_LOADERS``."""


def _parse(text: str, display: str, result: FileContents) -> None:
    loader_class = LOADER

    def reader_error(exc: yaml.reader.ReaderError) -> ManifestError:
        before = text.encode()[: exc.position] if loader_class.byte_positions else None
        newlines = before.count(b"\n") if before is not None else text[: exc.position].count("\n")
        return ManifestError(display, newlines + 1, _reader_message(exc))

    try:
        loader: Any = loader_class(text)  # type: ignore[call-arg]
    except yaml.reader.ReaderError as exc:
        result.errors.append(reader_error(exc))
        return
    try:
        for index, node in enumerate(_nodes(loader)):
            _document(node, index, display, loader, result)
    except _TooDeep as exc:
        result.errors.append(ManifestError(display, exc.line, _too_deep()))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
        at = min(mark.line + 1, max(last_line, 1)) if mark is not None else None
        result.errors.append(ManifestError(display, at, _yaml_message(exc, text)))
    except yaml.reader.ReaderError as exc:
        result.errors.append(reader_error(exc))
    except yaml.YAMLError as exc:
        result.errors.append(ManifestError(display, None, f"YAML error: {exc}"))
    except RecursionError:
        result.errors.append(ManifestError(display, None, _too_deep()))
    finally:
        loader.dispose()


def _nodes(loader: Any) -> Iterator[Node]:
    while loader.check_node():
        node = loader.get_node()
        if node is not None:
            yield node


def _document(node: Node, index: int, display: str, loader: Any, result: FileContents) -> None:
    if isinstance(node, _AliasNode):
        node = node.target
    line = node.start_mark.line + 1
    if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
        return  # an empty document ("---" followed by nothing, or only comments)
    if not isinstance(node, MappingNode):
        what = "a list" if isinstance(node, SequenceNode) else f"the scalar {node.value!r:.60}"
        result.errors.append(
            ManifestError(
                display,
                line,
                f"a manifest must be a mapping with apiVersion, kind, metadata and spec; this"
                f" document is {what}",
            )
        )
        return
    converter = _Converter(loader)
    try:
        data = converter.convert(node, (), 1, None)
    except _Fatal as exc:
        result.errors.append(ManifestError(display, exc.line, exc.message))
        return
    result.documents.append(
        SourceDocument(display, index, line, data, converter.lines, tuple(converter.issues))
    )


class _Fatal(Exception):
    """A problem that makes the rest of the document meaningless (it is dropped)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Converter:
    """Nodes to plain data, recording lines, refusing duplicate keys and counting alias output."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lines: dict[FieldPath, int] = {}
        self.issues: list[SourceIssue] = []
        self.active: set[int] = set()
        self.alias_nodes = 0

    def convert(self, node: Node, path: FieldPath, depth: int, alias_line: int | None) -> Any:
        """``alias_line`` is where the outermost alias being expanded was used, if any."""
        line = node.start_mark.line + 1
        if isinstance(node, _AliasNode):
            return self.convert(node.target, path, depth, alias_line or line)
        if depth > MAX_DEPTH:
            raise _Fatal(alias_line or line, _too_deep())
        if id(node) in self.active:
            raise _Fatal(
                alias_line or line,
                "an alias refers to a node that contains it (a recursive structure)",
            )
        if alias_line is not None:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise _Fatal(
                    alias_line,
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?);"
                    " write the content out or use fewer, smaller aliases",
                )
        if isinstance(node, ScalarNode):
            return self._scalar(node, line)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._expect_tag(node, _SEQ_TAG, line)
                items = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    items.append(self.convert(item, (*path, index), depth + 1, alias_line))
                return items
            if isinstance(node, MappingNode):
                self._expect_tag(node, _MAP_TAG, line)
                return self._mapping(node, path, depth, alias_line)
            raise _Fatal(line, f"unsupported YAML node {type(node).__name__}")
        finally:
            self.active.discard(id(node))

    def _mapping(
        self, node: MappingNode, path: FieldPath, depth: int, alias_line: int | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key_target = key_node.target if isinstance(key_node, _AliasNode) else key_node
            if not isinstance(key_target, ScalarNode):
                raise _Fatal(line, "mapping keys must be plain strings, not lists or mappings")
            key = str(key_target.value)
            if key in result:
                self.issues.append(
                    SourceIssue(
                        (*path, key),
                        line,
                        f"duplicate key {key!r} (first at line {first_line[key]}); each key may"
                        " appear only once in a mapping",
                    )
                )
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            result[key] = self.convert(value_node, (*path, key), depth + 1, alias_line)
        for merge in merges:
            self._merge(merge, result, path, depth, alias_line)
        return result

    def _merge(
        self, node: Node, into: dict[str, Any], path: FieldPath, depth: int, alias_line: int | None
    ) -> None:
        """YAML merge keys (``<<: *defaults``): explicit keys win, earlier sources win."""
        line = node.start_mark.line + 1
        if isinstance(node, _AliasNode):
            alias_line = alias_line or line
            node = node.target
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            used_at = alias_line
            if isinstance(source, _AliasNode):
                used_at = alias_line or source.start_mark.line + 1
                source = source.target
            if not isinstance(source, MappingNode):
                raise _Fatal(line, "a merge key (<<) needs a mapping or a list of mappings")
            outer = self.lines
            self.lines = {}
            try:
                merged = self.convert(source, (), depth, used_at)
                merged_lines = self.lines
            finally:
                self.lines = outer
            for key, value in merged.items():
                if key in into:
                    continue
                into[key] = value
                for sub, sub_line in merged_lines.items():
                    if sub[:1] == (key,):
                        self.lines[(*path, *sub)] = sub_line

    def _scalar(self, node: ScalarNode, line: int) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise _Fatal(line, _unsupported_tag(node.tag))
        try:
            return self.loader.construct_object(node)
        except Exception as exc:  # a bad timestamp, an int beyond Python's digit limit, ...
            reason = str(exc).split(";")[0]
            raise _Fatal(line, f"cannot read the value {node.value!r:.60}: {reason}") from exc

    @staticmethod
    def _expect_tag(node: Node, tag: str, line: int) -> None:
        if node.tag != tag:
            raise _Fatal(line, _unsupported_tag(node.tag))


def _unsupported_tag(tag: str) -> str:
    return f"unsupported YAML tag {tag!r}; only plain mappings, lists and scalars are allowed"


def _too_deep() -> str:
    return f"nesting is deeper than {MAX_DEPTH} levels, the limit for a manifest"


def _yaml_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    if exc.context:
        message += f" ({exc.context})"
    mark = exc.problem_mark
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
        message += "; tabs are not allowed for indentation in YAML, use spaces"
    return message


def _reader_message(exc: yaml.reader.ReaderError) -> str:
    char = exc.character
    code = ord(char) if isinstance(char, str) else char
    return (
        f"control character #x{code:04x} is not allowed in YAML; manifests must be printable UTF-8"
        " text"
    )
