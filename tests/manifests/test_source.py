"""The YAML reader: lines for every key and item, aliases and merges, and hostile input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.manifests import source
from controller.manifests.source import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    FileContents,
    discover,
    read_file,
)


@pytest.fixture(autouse=True, params=source._LOADERS, ids=lambda loader: loader.__name__)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test here runs with libyaml's events and with the pure-Python fallback."""
    monkeypatch.setattr(source, "LOADER", request.param)
    yield


def read(tmp_path: Path, text: str | bytes) -> FileContents:
    path = tmp_path / "doc.yaml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return read_file(path, "doc.yaml")


def test_every_key_and_item_has_its_line(tmp_path: Path) -> None:
    contents = read(
        tmp_path,
        "a: 1\n"  # 1
        "b:\n"  # 2
        "  c: [x,\n"  # 3
        "      y]\n"  # 4
        "  d:\n"  # 5
        "    - e: 1\n"  # 6
        "      f: 2\n"  # 7
        "    - g\n",  # 8
    )
    assert contents.errors == []
    (doc,) = contents.documents
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 1, "f": 2}, "g"]}}
    assert doc.lines == {
        ("a",): 1,
        ("b",): 2,
        ("b", "c"): 3,
        ("b", "c", 0): 3,
        ("b", "c", 1): 4,
        ("b", "d"): 5,
        ("b", "d", 0): 6,
        ("b", "d", 0, "e"): 6,
        ("b", "d", 0, "f"): 7,
        ("b", "d", 1): 8,
    }
    # A missing field is located at its nearest present parent.
    assert doc.line_of(("b", "d", 0, "missing")) == 6
    assert doc.line_of(("nowhere",)) == doc.line == 1


def test_documents_keep_their_start_lines_and_empty_ones_are_skipped(tmp_path: Path) -> None:
    contents = read(tmp_path, "# c\na: 1\n---\n---\n# only a comment\n---\nb: 2\n--- ~\n")
    assert contents.errors == []
    assert [(d.index, d.line, d.data) for d in contents.documents] == [
        (0, 2, {"a": 1}),
        (3, 7, {"b": 2}),
    ]


def test_keys_are_the_text_written_not_yaml_booleans(tmp_path: Path) -> None:
    (doc,) = read(tmp_path, "yes: on\n1: 2\nnull: ~\n").documents
    assert doc.data == {"yes": True, "1": 2, "null": None}


def test_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    contents = read(
        tmp_path,
        "base: &base\n"  # 1
        "  x: 1\n"  # 2
        "  y: 2\n"  # 3
        "use:\n"  # 4
        "  <<: *base\n"  # 5
        "  y: 3\n"  # 6
        "list: [*base]\n",  # 7
    )
    assert contents.errors == []
    (doc,) = contents.documents
    assert doc.data == {
        "base": {"x": 1, "y": 2},
        "use": {"y": 3, "x": 1},
        "list": [{"x": 1, "y": 2}],
    }
    assert doc.lines[("use", "y")] == 6  # the explicit key wins, with its own line
    assert doc.lines[("use", "x")] == 2  # a merged key points at where it was written
    assert doc.issues == ()


def test_duplicate_keys_are_issues_and_the_first_value_is_kept(tmp_path: Path) -> None:
    (doc,) = read(tmp_path, "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n").documents
    assert doc.data == {"a": 1, "b": {"c": 1}}
    assert [(i.path, i.line) for i in doc.issues] == [(("b", "c"), 4), (("a",), 5)]
    assert "first at line 3" in doc.issues[0].message


def test_alias_bomb_is_refused_at_the_line_that_expands_it(tmp_path: Path) -> None:
    lines = ["l0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    for level in range(1, 8):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    contents = read(tmp_path, "\n".join(lines) + "\n")
    assert contents.documents == []
    (error,) = contents.errors
    # l1 adds 110 nodes, l2 1,110, l3 11,110: the budget runs out inside l3's aliases.
    assert error.line == 4
    assert f"more than {MAX_ALIAS_NODES} nodes" in error.message


def test_aliases_within_budget_are_fine(tmp_path: Path) -> None:
    text = "a: &a [1, 2, 3]\n" + "".join(f"k{i}: *a\n" for i in range(100))
    (doc,) = read(tmp_path, text).documents
    assert doc.data["k99"] == [1, 2, 3]


def test_nesting_limit_holds_for_block_and_flow_styles(tmp_path: Path) -> None:
    flow = "x: " + "[" * 200_000 + "\n"  # deep enough to overflow a recursive composer
    (error,) = read(tmp_path, flow).errors
    assert error.line == 1 and "nesting" in error.message  # libyaml may refuse it first

    block = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    (error,) = read(tmp_path, block).errors
    assert error.line == MAX_DEPTH and f"deeper than {MAX_DEPTH}" in error.message

    fits = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH - 1))
    assert read(tmp_path, fits).errors == []


def test_hostile_scalars_become_located_errors(tmp_path: Path) -> None:
    cases = {
        "a: 1\nb: " + "9" * 5000 + "\n": (2, "cannot read the value"),
        "a: 1\nb: 2024-13-45\n": (2, "month must be in 1..12"),
        "a: 1\nb: !!python/object:os.system echo\n": (2, "unsupported YAML tag"),
        "a: !!binary aGVsbG8=\n": (1, "unsupported YAML tag"),
        "a: !!set {x, y}\n": (1, "unsupported YAML tag"),
        "a: 1\nb: *nowhere\n": (2, "undefined alias"),
        "a: 1\nb: \x00\n": (2, "control character #x0000"),
        "[a, b]: 1\n": (1, "mapping keys must be plain strings"),
    }
    for text, (line, fragment) in cases.items():
        contents = read(tmp_path, text)
        assert contents.documents == [], text
        (error,) = contents.errors
        assert (error.line, fragment in error.message) == (line, True), (text, str(error))


def test_utf8_bom_is_accepted_and_other_encodings_are_refused(tmp_path: Path) -> None:
    (doc,) = read(tmp_path, b"\xef\xbb\xbfa: 1\n").documents
    assert doc.data == {"a": 1}
    (error,) = read(tmp_path, "a: 1\nb: x\n".encode("utf-16")).errors
    assert error.line == 1 and "not UTF-8" in error.message


def test_a_syntax_error_keeps_the_documents_before_it(tmp_path: Path) -> None:
    contents = read(tmp_path, "a: 1\n---\nb: [1,\n")
    assert [d.data for d in contents.documents] == [{"a": 1}]
    (error,) = contents.errors
    assert error.line == 3 and error.message.startswith("YAML syntax error")


def test_discover_sorts_recursively_and_skips_hidden_and_other_files(tmp_path: Path) -> None:
    for name in ["b.yaml", "a/z.yml", "a/b/c.YAML", ".hidden.yaml", ".git/x.yaml", "n.txt"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a: 1\n")
    (tmp_path / "dir.yaml").mkdir()
    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]
    assert found == ["a/b/c.YAML", "a/z.yml", "b.yaml"]
