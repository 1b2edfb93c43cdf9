"""Hostile desired state through the real CLI: ``validate DIR`` and ``plan DIR --endpoint-url``.

Pull requests bring desired state from anyone, so whatever a tree holds - YAML-ish noise, arbitrary
bytes, runaway nesting, files over the size cap, alias bombs, a good tree with bad files among
good ones - the CLI must answer the way CI relies on:

* it returns (no exception escapes ``main``) and takes the invalid-desired-state path, not the
  catch-all ``error: SomeException`` one that would hide a crash behind exit 1;
* the exit code is exactly 1 and stdout stays empty;
* every error is one printable line, as many as the header counts (a name cannot forge lines);
* at least one error is located in a file of the tree, at a line that exists in that file, and
  no error blames a file holding only good documents. Two exceptions, by design: a file over the
  size cap is refused unread, so its error names the file and no line; and a lone file holding
  only empty documents is reported at the directory (checked against PyYAML's own reading);
* ``plan`` makes no AWS call at all: the sandbox's call counter stays empty;
* each example finishes within hypothesis's ``deadline`` (5 s). Dense YAML is the slow case,
  about 5 µs a byte, so a dense file at the full 1 MiB cap takes about 5 s on its own: linear
  and bounded by the cap, which is why dense examples here stay at a quarter of it.

``EXAMPLES`` (100 per property, a third of that for huge files and ``plan``) keeps the module at
about 10 s; ``FLEET_FUZZ_EXAMPLES=3000`` hunts longer (about 4 min). ``!!python/...`` tags are
refused outright, with no side effect: the loader is safe.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.cli import main
from controller.manifests.source import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES
from controller.observability.logging import configure_logging

EXAMPLES = int(os.environ.get("FLEET_FUZZ_EXAMPLES", "100"))
"""Per property (a third as many for huge files and ``plan``); raise it for a longer hunt."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the sandbox: its call log is reset per example
    ],
)
PLAN_FUZZ = settings(FUZZ, max_examples=EXAMPLES // 3)

API = "fleet-controller/v1alpha1"
SIZE_CAP_MESSAGE = "file is larger than"
EMPTY_MESSAGE = "holds no manifests (every document is empty)"
# YAML's line breaks (a lone \r, NEL and the Unicode separators count, as they do for the parser).
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


# -- trees ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    path: str  # relative, always *.yaml or *.yml, never hidden
    content: bytes
    bad: bool  # made invalid on purpose (errors may name it); False: only valid documents

    def __repr__(self) -> str:  # a falsifying example of 1 MiB is unreadable in full
        content = self.content
        shown = (
            repr(content) if len(content) <= 600 else f"{content[:300]!r} ... {content[-300:]!r}"
        )
        return f"File({self.path!r}, {len(content)} bytes: {shown}, bad={self.bad})"


@dataclass(frozen=True)
class Tree:
    files: tuple[File, ...]
    may_be_empty: bool = False  # one file of noise that may hold only empty documents


@contextmanager
def written(tree: Tree) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as directory:
        root = Path(directory)
        for file in tree.files:
            path = root / file.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(file.content)
        (root / "README.md").write_text("not a manifest: ignored\n")  # other files are skipped
        yield root


# -- running the CLI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([*argv, "--log-format", "json"])
    finally:
        configure_logging("json", "info")  # main pointed logging at ``err``; point it back
    return Outcome(code, out.getvalue(), err.getvalue())


def line_count(content: bytes) -> int:
    text = content.decode("utf-8", "replace")
    return max(len(LINE_BREAK.findall(text)), content.count(b"\n")) + 1


def only_empty_documents(content: bytes) -> bool:
    """A second reading: PyYAML's own safe loader sees nothing but empty documents.

    It parses with libyaml when the loader does (the two parsers disagree on corners such as a
    byte-order mark after the first character), so what it checks is our composer and converter.
    """
    text = content.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    return all(document is None for document in yaml.load_all(text, Loader=loader))


def check_refused(tree: Tree, root: Path, outcome: Outcome) -> None:
    """The CLI refused ``tree`` as CI expects; see the module docstring."""
    err = outcome.stderr
    assert outcome.code == 1, (outcome, tree)
    assert outcome.stdout == "", outcome.stdout
    assert err.startswith("desired state is invalid ("), err[:2000]
    assert "Traceback" not in err and not re.search(r"(?m)^error:", err), err[:2000]
    # One error per line, as many as the header says: user text (a name with a line break, an
    # escape sequence) can neither forge another error line nor hide one.
    head, *rest = err.split("\n")
    count = int(re.fullmatch(r"desired state is invalid \((\d+) errors?\):", head).group(1))
    assert rest[-1] == "" and len(rest) == count + 1, err[:3000]
    assert all(line.startswith("  ") and line.isprintable() for line in rest[:-1]), err[:3000]
    errors = [line[2:] for line in rest[:-1]]

    files = {str(root / f.path): f for f in tree.files}
    lines = {f.path: line_count(f.content) for f in tree.files}
    located: list[tuple[File, int | None]] = []
    for error in errors:
        for name, file in files.items():
            rest = error[len(name) :] if error.startswith(name + ":") else None
            if rest is None:
                continue
            number = re.match(r":(\d+): ", rest)
            if number:
                line = int(number.group(1))
                assert 1 <= line <= lines[file.path], (error, lines[file.path])
                located.append((file, line))
            else:  # only a file over the cap has no line
                assert rest.startswith(f": {SIZE_CAP_MESSAGE}"), error
                assert len(file.content) > MAX_FILE_BYTES, error
                located.append((file, None))
    if not located:
        assert tree.may_be_empty and errors == [f"{root}: {EMPTY_MESSAGE}"], errors
        assert only_empty_documents(tree.files[0].content), tree
        return
    assert all(file.bad for file, _ in located), (errors, tree)  # never blames a good file
    assert any(line is not None or len(file.content) > MAX_FILE_BYTES for file, line in located)


def check_plan_calls_nothing(sandbox: Any, tree: Tree) -> None:
    with written(tree) as root:
        sandbox.admin.reset_calls()
        outcome = run_cli("plan", str(root), "--endpoint-url", sandbox.endpoint, "--region",
                          "us-east-1")  # fmt: skip
        check_refused(tree, root, outcome)
    assert sandbox.admin.calls() == []


def check_validate(tree: Tree) -> None:
    with written(tree) as root:
        check_refused(tree, root, run_cli("validate", str(root)))


# -- strategies ----------------------------------------------------------------------------------

NAMES = st.sampled_from(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"])


def paths() -> st.SearchStrategy[str]:
    """Where a file sits matters little to the loader; a few shapes, so examples vary content."""
    return st.sampled_from(
        ["f.yaml", "g.yml", "h.YAML", "a/b.yaml", "a/c.yml", "x/y/z.yaml", "x/y/w-1_2.yml"]
    )


def activation(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Activation",
        "metadata": {"name": name},
        "spec": {"iamRole": "SSMServiceRole", "publish": {"parameterName": f"/fuzz/{name}"}},
    }


def tagsync(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "TagSync",
        "metadata": {"name": name},
        "spec": {"copyTags": {"include": ["CostCenter"]}},
    }


ANY_VALUE: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@st.composite
def broken_document(draw: st.DrawFn) -> dict[str, Any]:
    """A manifest with one thing certainly wrong, under a name no valid document uses."""
    document = activation("zulu")
    how = draw(st.sampled_from(["limit", "name", "field", "kind", "api", "missing", "role"]))
    spec = document["spec"]
    if how == "limit":
        spec["registrationLimit"] = draw(
            st.integers().filter(lambda n: not 1 <= n <= 1000) | st.text(max_size=6)
        )
    elif how == "name":
        document["metadata"]["name"] = draw(
            st.text(max_size=70).filter(lambda s: not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", s))
        )  # fmt: skip
    elif how == "field":
        known = {"iamRole", "publish", "registrationLimit", "validFor", "renewBefore",
                 "rotateAtRegistrationPercent", "gracePeriod", "defaultInstanceName",
                 "description", "tags"}  # fmt: skip
        spec[draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in known))] = draw(
            ANY_VALUE
        )
    elif how == "kind":
        document["kind"] = draw(
            st.text(max_size=12).filter(lambda k: k not in {"Activation", "TagSync", "Package",
                                                            "Association"})
        )  # fmt: skip
    elif how == "api":
        document["apiVersion"] = draw(st.text(max_size=20).filter(lambda a: a != API))
    elif how == "missing":
        del spec[draw(st.sampled_from(["iamRole", "publish"]))]
    else:
        spec["iamRole"] = draw(st.lists(st.text(max_size=5), max_size=3) | st.integers())
    return document


# Fragments that steer random text into YAML's corners, unsafe tags and alias machinery included.
TOKENS = [
    f"apiVersion: {API}\n", "kind: Activation\n", "metadata:\n  name: x\n", "spec:\n",
    "  iamRole: R\n", "  tags:\n", "    K: v\n", "---\n", "...\n", "- ", ": ", "\n", "  ", "\t",
    "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b", "<<: ", "<<: *a\n", "!!str ", "!!binary ",
    "!!python/object:os.system ", "!!python/object/apply:os.system [true]\n", "!!python/name:os.sep ",
    "!Ref ", "!!set ", "!!omap ", "? ", "|\n", ">-\n", "'", '"', "#", "%YAML 1.1\n",
    "%TAG ! tag:yaml.org,2002:\n", "~", "null", "yes", "0x1F", "1e9", "2024-01-01", "\x00", "\ufeff",
    "\r", "\x85", "\u2028", "é", "\\", "\x7f", "\U0001f600", '"\\n  f.yaml:1: "', '"\\e[2J"',
    '"\\x85"', '"\\u2028"', "name: ", "  name: \"a\\nb\"\n",
]  # fmt: skip


@st.composite
def yamlish(draw: st.DrawFn) -> Tree:
    parts = draw(st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), min_size=1, max_size=80))
    content = "".join(parts).encode("utf-8", "surrogatepass")
    return Tree((File(draw(paths()), content, bad=True),), may_be_empty=True)


# Bytes no manifest may hold: not UTF-8 (a stray continuation byte, a truncated sequence, an
# encoded surrogate) or characters YAML refuses (C0 controls, DEL, a noncharacter).
BREAKERS = [b"\xff", b"\x80", b"\xc3(", b"\xed\xa0\x80", b"\x00", b"\x07", b"\x1b[2J", b"\x7f",
            "\ufffe".encode("utf-8", "surrogatepass")]  # fmt: skip


@st.composite
def binary(draw: st.DrawFn) -> Tree:
    noise = draw(st.binary(min_size=1, max_size=2000))
    if not draw(st.booleans()):
        return Tree((File(draw(paths()), noise, bad=True),), may_be_empty=True)
    # Bytes inside an otherwise good manifest, with one certainly bad byte sequence among them.
    at = draw(st.integers(0, len(noise)))
    noise = noise[:at] + draw(st.sampled_from(BREAKERS)) + noise[at:]
    good = yaml.safe_dump(activation("yankee")).encode()
    at = draw(st.integers(0, len(good)))
    return Tree((File(draw(paths()), good[:at] + noise + good[at:], bad=True),))


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(MAX_DEPTH - 2, 4000))
    style = draw(st.sampled_from(["flow-seq", "flow-map", "block-seq", "block-map", "mixed"]))
    closed = draw(st.booleans())
    if style == "flow-seq":
        body = "[" * depth + ("]" * depth if closed else "")
    elif style == "flow-map":
        body = "{a: " * depth + "x" + ("}" * depth if closed else "")
    elif style == "mixed":
        body = "[{a: " * (depth // 2) + "x" + ("}]" * (depth // 2) if closed else "")
    else:
        depth = min(depth, 600)  # block styles indent: keep the file under the size cap
        unit = "- " if style == "block-seq" else "k:\n"
        body = "".join(" " * (2 * i) + unit + ("\n" if unit == "- " else "") for i in range(depth))
    if draw(st.booleans()):  # inside a manifest's spec rather than the whole document
        head = f"apiVersion: {API}\nkind: Activation\nmetadata: {{name: zulu}}\nspec:\n  tags: "
        body = head + (body if body.startswith(("[", "{")) else "\n" + _indent(body, 4))
    return body.encode()


def _indent(text: str, by: int) -> str:
    return "".join(" " * by + line + "\n" for line in text.splitlines())


@st.composite
def bomb(draw: st.DrawFn) -> bytes:
    """Billion laughs and its relatives: every level refers to the previous one ``width`` times."""
    width = draw(st.integers(2, 12))
    levels = draw(st.integers(2, 12))
    style = draw(st.sampled_from(["seq", "map", "merge", "key", "recursive", "undefined"]))
    lines = [f"apiVersion: {API}", "kind: Activation", "metadata: {name: zulu}", "spec:",
             "  iamRole: SSMServiceRole", "  publish: {parameterName: /fuzz/zulu}", "  bomb:",
             f"    a0: &a0 [{', '.join(['lol'] * width)}]"]  # fmt: skip
    if style == "recursive":
        lines.append("    loop: &loop [x, *loop]")
    elif style == "undefined":
        lines.append("    ghost: *nobody")
    for level in range(1, levels + 1):
        prev = f"*a{level - 1}"
        if style in ("seq", "recursive", "undefined"):
            value = f"[{', '.join([prev] * width)}]"
        elif style == "map":
            value = "{" + ", ".join(f"k{i}: {prev}" for i in range(width)) + "}"
        elif style == "merge":
            value = f"{{<<: [{', '.join([prev] * width)}], own{level}: x}}"
            if level == 1:
                lines[-1] = f"    a0: &a0 {{{', '.join(f'k{i}: lol' for i in range(width))}}}"
        else:  # aliases as keys and values
            value = "{" + ", ".join(f"? [{prev}, {i}] : {prev}" for i in range(width)) + "}"
        lines.append(f"    a{level}: &a{level} {value}")
    return ("\n".join(lines) + "\n").encode()


DENSE_BYTES = 256 * 1024
"""Dense YAML costs the parser about 5 µs a byte; at this size an example stays well inside the
deadline (a dense file at the full 1 MiB cap takes about 5 s: linear, bounded by the cap)."""


@st.composite
def huge(draw: st.DrawFn) -> bytes:
    """Over the cap (refused unread); just under it with the only mistake at the very end; or a
    quarter of it, dense: thousands of duplicate keys, documents or list items."""
    unit = draw(
        st.sampled_from(["# padding\n", "---\n", "a: b\n", "- x\n", "---\na: 1\n", "[a, "])
        | st.just(yaml.safe_dump(activation("yankee")) + "---\n")
        | st.text(min_size=1, max_size=40).map(lambda s: s + "\n")
    )
    encoded = unit.encode("utf-8", "surrogatepass")
    variant = draw(st.sampled_from(["over", "under", "dense"]))
    if variant == "over":
        extra = draw(st.integers(1, 65536))
        return (encoded * (MAX_FILE_BYTES // len(encoded) + 1))[: MAX_FILE_BYTES + extra]
    tail = b"---\n" + yaml.safe_dump(draw(broken_document())).encode()
    if variant == "under":
        return b"# padding\n" * ((MAX_FILE_BYTES - len(tail)) // 10) + tail
    size = draw(st.integers(DENSE_BYTES // 4, DENSE_BYTES))
    return encoded * (size // len(encoded)) + tail


UNSAFE = st.sampled_from([
    "!!python/object/apply:os.system ['true']",
    "!!python/object:collections.OrderedDict {}",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!custom x",
])  # fmt: skip


@st.composite
def unsafe(draw: st.DrawFn) -> bytes:
    document = yaml.safe_dump(activation("zulu")).replace(
        "iamRole: SSMServiceRole", f"iamRole: {draw(UNSAFE)}"
    )
    return document.encode()


BAD_CONTENT = st.one_of(
    st.builds(lambda d: yaml.safe_dump(d).encode(), broken_document()),
    deep(),
    bomb(),
    huge(),
    unsafe(),
    st.binary(min_size=1, max_size=300).map(lambda b: b"\xff" + b),  # never UTF-8
)


@st.composite
def mixed(draw: st.DrawFn) -> Tree:
    """Several files: good documents under distinct names, alone or ahead of bad content."""
    good = [
        draw(st.sampled_from([activation, tagsync]))(name)
        for name in draw(st.lists(NAMES, unique=True, max_size=4))
    ]
    alone = draw(st.integers(0, len(good)))
    used: set[str] = set()

    def fresh_path() -> str:
        path = draw(paths().filter(lambda p: p.lower() not in used))
        used.add(path.lower())
        return path

    files = [File(fresh_path(), yaml.safe_dump(doc).encode(), bad=False) for doc in good[:alone]]
    companions = good[alone:]
    for content in draw(st.lists(BAD_CONTENT, min_size=1, max_size=2)):
        if companions and not content.startswith(b"\xff") and len(content) < MAX_FILE_BYTES // 2:
            content = yaml.safe_dump(companions.pop()).encode() + b"---\n" + content
        files.append(File(fresh_path(), content, bad=True))
    return Tree(tuple(draw(st.permutations(files))))


# -- properties ----------------------------------------------------------------------------------


@st.composite
def single(draw: st.DrawFn, content: st.SearchStrategy[bytes]) -> Tree:
    return Tree((File(draw(paths()), draw(content), bad=True),))


@FUZZ
@given(yamlish())
def test_validate_yamlish_noise(tree: Tree) -> None:
    check_validate(tree)


@FUZZ
@given(binary())
def test_validate_arbitrary_bytes(tree: Tree) -> None:
    check_validate(tree)


@FUZZ
@given(single(deep()))
def test_validate_deep_nesting(tree: Tree) -> None:
    check_validate(tree)


@FUZZ
@given(single(bomb()))
def test_validate_alias_bombs(tree: Tree) -> None:
    check_validate(tree)


@settings(FUZZ, max_examples=EXAMPLES // 3)
@given(single(huge()))
def test_validate_huge_files(tree: Tree) -> None:
    check_validate(tree)


@FUZZ
@given(mixed())
def test_validate_mixed_good_and_bad_files(tree: Tree) -> None:
    check_validate(tree)


@PLAN_FUZZ
@given(st.one_of(yamlish(), binary(), mixed()))
def test_plan_refuses_without_calling_aws(sandbox: Any, tree: Tree) -> None:
    check_plan_calls_nothing(sandbox, tree)


def test_python_tags_are_refused_and_never_run(tmp_path: Path, sandbox: Any) -> None:
    """YAML is loaded safely: a tag that would run code under an unsafe loader is an error."""
    marker = tmp_path / "ran"
    desired = tmp_path / "desired"
    desired.mkdir()
    document = yaml.safe_dump(activation("zulu")).replace(
        "iamRole: SSMServiceRole",
        f"iamRole: !!python/object/apply:os.system ['touch {marker}']",
    )
    (desired / "a.yaml").write_text(document)
    tree = Tree((File("a.yaml", document.encode(), bad=True),))
    for argv in (["validate", str(desired)], ["plan", str(desired), "--endpoint-url",
                                               sandbox.endpoint, "--region", "us-east-1"]):  # fmt: skip
        sandbox.admin.reset_calls()
        outcome = run_cli(*argv)
        check_refused(tree, desired, outcome)
        assert "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'" in (
            outcome.stderr
        )
        assert sandbox.admin.calls() == []
    assert not marker.exists()


def test_an_alias_bomb_is_cut_off_at_the_alias_budget() -> None:
    """The bomb strategy really explodes: nine levels of nine is 9**9 nodes, refused at the budget."""
    content = _nine_by_nine()
    tree = Tree((File("bomb.yaml", content, bad=True),))
    with written(tree) as root:
        outcome = run_cli("validate", str(root))
        check_refused(tree, root, outcome)
    assert f"aliases expand to more than {MAX_ALIAS_NODES} nodes" in outcome.stderr


def _nine_by_nine() -> bytes:
    lines = [f"apiVersion: {API}", "kind: Activation", "metadata: {name: zulu}", "spec:",
             "  bomb:", "    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]  # fmt: skip
    for level in range(1, 10):
        lines.append(f"    a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def test_an_error_is_one_line_whatever_the_names_hold() -> None:
    """A quoted name can hold a line break and escape sequences: printed raw, it would forge an
    error at another file:line (CI logs and PR comments show stderr) or drive the terminal."""
    document = (
        f"apiVersion: {API}\nkind: Activation\nmetadata:\n"
        '  name: "a\\n  elsewhere.yaml:1: Activation/b: all good\\e[2J\\u2028"\n'
        "spec: {iamRole: R, publish: {parameterName: /a/b}}\n"
    ).encode()
    tree = Tree((File("f.yaml", document, bad=True),))
    with written(tree) as root:
        outcome = run_cli("validate", str(root))
        check_refused(tree, root, outcome)
    assert "Activation/a\\n  elsewhere.yaml:1: Activation/b: all good\\x1b[2J\\u2028: " in (
        outcome.stderr
    )


def test_the_call_counter_sees_a_plan_that_does_call(sandbox: Any) -> None:
    """The "no AWS call" check above is not vacuous: a valid tree's plan is counted."""
    tree = Tree((File("ok.yaml", yaml.safe_dump(activation("alpha")).encode(), bad=False),))
    with written(tree) as root:
        sandbox.admin.reset_calls()
        outcome = run_cli("plan", str(root), "--endpoint-url", sandbox.endpoint, "--region",
                          "us-east-1")  # fmt: skip
    assert outcome.code == 0, outcome
    assert {"DescribeActivations", "DescribeParameters"} <= set(sandbox.admin.call_counts("ssm"))
