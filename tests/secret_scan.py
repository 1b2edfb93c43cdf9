"""pytest plugin: scan everything the suite produced for every activation code a sandbox issued.

DESIGN.md's non-negotiable "secrets never reach logs, plan output, metrics or exceptions" is checked
here against the whole suite rather than one test: whatever the tests made the controller do, none
of the text it produced may contain a code the sandbox handed out.

Produced text, collected per test and scanned when the test ends (a code cannot appear in text
produced before it was issued, so scanning as we go is sound and keeps memory flat):

* log lines: every line rendered by ``configure_logging`` in this process and in every controller
  subprocess (``LOG_TEE_ENV`` makes each process append its lines to ``<dir>/<pid>.log``), and
  pytest's own "Captured log" sections;
* captured stdout/stderr of every phase of every test (pytest keeps them for passing tests too),
  which holds CLI output such as rendered plans, located errors and ``export`` YAML, and the
  output of every ``subprocess.run`` a test made;
* plan output returned rather than printed: the return values of ``controller.engine.render``'s
  renderers;
* metric text: every live ``Metrics`` instance rendered (``Metrics.text()``) at each test's end;
* exception text: failure and error reports (``longrepr``), collection errors, warnings;
* ``*.log``/``*.err``/``*.out`` files under pytest's temporary directory (the e2e harness writes
  controller and Prometheus output there), and the test ids.

A code is looked for as issued, percent-encoded and with JSON's ``\\/`` escape.

Issued codes come from the sandbox itself (it is the fake AWS): the in-process record
(``ssm_activations.issued_codes()``), the files any sandbox process appends to when
``ISSUED_CODES_ENV`` is set (a subprocess sandbox that has exited), and
``GET /_sandbox/issued-codes`` of every sandbox endpoint a ``SandboxClient`` talked to, asked
before the test's fixtures are torn down. Values a test merely holds (a published parameter it
decrypts to compare) are not output and are never scanned.

Not covered: text a test builds and keeps without printing it (``str(error)`` inside
``pytest.raises``); the stdout of subprocesses read through ``Popen`` pipes (their log lines are
teed); ``/metrics`` served by controller subprocesses (the same redacting ``Metrics.render``);
a code cut in pieces or encoded otherwise (base64 of a whole body).

A hit fails the session, naming the code's first characters only and where it appeared. So the
scan cannot pass vacuously, the terminal summary states how many codes were issued and how many
bytes were scanned, and a full run (no paths, ``-k`` or ``-m`` given) in which no code was issued
fails too.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.observability.logging import LOG_TEE_ENV
from fleet_sandbox.ssm_activations import ISSUED_CODES_ENV

SHOWN_PREFIX = 4
"""How many characters of a leaked code the report shows: enough to find it, useless to abuse."""

KINDS = ("log", "captured", "plan", "metrics", "exception", "file")

OUTPUT_SUFFIXES = (".log", ".err", ".out")
"""Files under pytest's temporary directory that hold a process's output (not a test's input)."""


# -- the scanner (pure) --------------------------------------------------------------------------


def spellings(code: str) -> set[str]:
    """How a code can appear in text: as is, percent-encoded (a URL, a form body) and with JSON's
    optional ``\\/`` escape."""
    return {code, urllib.parse.quote(code, safe=""), code.replace("/", "\\/")}


class CodeIndex:
    """Finds any of a set of codes, in any of its spellings, in one pass over a text.

    Spellings are searched as windows of runs of their own alphabet (an activation code is 20
    characters of ``[A-Za-z0-9+/]``), so the cost is proportional to the text, not to text length
    times the number of codes.
    """

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = frozenset(code for code in codes if code)
        self._spelt = {variant: code for code in self.codes for variant in spellings(code)}
        self._lengths = sorted({len(variant) for variant in self._spelt})
        alphabet = "".join(sorted(set("".join(self._spelt))))
        self._runs = (
            re.compile(f"[{re.escape(alphabet)}]{{{self._lengths[0]},}}") if self.codes else None
        )

    def find(self, text: str) -> set[str]:
        """The codes (as issued) that ``text`` contains."""
        if self._runs is None or not text:
            return set()
        found: set[str] = set()
        for match in self._runs.finditer(text):
            run = match.group()
            for length in self._lengths:
                for start in range(len(run) - length + 1):
                    code = self._spelt.get(run[start : start + length])
                    if code is not None:
                        found.add(code)
        return found


@dataclass(frozen=True)
class Finding:
    kind: str
    where: str
    code: str

    def __str__(self) -> str:
        return f"code {self.code[:SHOWN_PREFIX]}… in {self.kind}: {self.where}"


@dataclass
class SecretScan:
    """Texts in, findings out. ``feed`` scans against the codes known when it is called."""

    index: CodeIndex = field(default_factory=lambda: CodeIndex(()))
    findings: list[Finding] = field(default_factory=list)
    bytes_by_kind: Counter[str] = field(default_factory=Counter)
    texts_by_kind: Counter[str] = field(default_factory=Counter)

    def know(self, codes: Iterable[str]) -> None:
        new = set(codes) - self.index.codes
        if new:
            self.index = CodeIndex(self.index.codes | new)

    def feed(self, kind: str, where: str, text: str) -> list[Finding]:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of output {kind!r}")
        if not text:
            return []
        self.bytes_by_kind[kind] += len(text.encode("utf-8", "replace"))
        self.texts_by_kind[kind] += 1
        hits = [Finding(kind, where, code) for code in sorted(self.index.find(text))]
        for hit in hits:
            if hit not in self.findings:
                self.findings.append(hit)
        return hits

    @property
    def bytes_scanned(self) -> int:
        return sum(self.bytes_by_kind.values())


# -- where the codes come from -------------------------------------------------------------------


def in_process_codes() -> list[str]:
    module = sys.modules.get("fleet_sandbox.ssm_activations")
    return list(module.issued_codes()) if module is not None else []


def recorded_codes(directory: Path) -> set[str]:
    codes: set[str] = set()
    for path in directory.glob("*.codes"):
        codes.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    codes.discard("")
    return codes


def route_codes(endpoint: str) -> list[str] | None:
    """The codes a sandbox says it issued, or None when it cannot be reached (it has stopped)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_sandbox/issued-codes", timeout=5) as response:
            return [str(code) for code in json.loads(response.read())["codes"]]
    except (OSError, ValueError, KeyError):
        return None


# -- following files other processes append to ---------------------------------------------------


class Tail:
    """Read what was appended to files since last time, up to each file's last complete line."""

    def __init__(self) -> None:
        self._offsets: dict[Path, int] = {}

    def new_text(self, paths: Iterable[Path], final: bool = False) -> Iterator[tuple[Path, str]]:
        for path in sorted(paths):
            try:
                with path.open("rb") as handle:
                    handle.seek(self._offsets.get(path, 0))
                    data = handle.read()
            except OSError:
                continue
            if not final and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]
            if data:
                self._offsets[path] = self._offsets.get(path, 0) + len(data)
                yield path, data.decode("utf-8", "replace")


# -- the plugin ----------------------------------------------------------------------------------


def _replace_everywhere(module: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Wrap ``module.name`` and every already-imported alias of it (``from x import name``)."""
    original = getattr(module, name)
    wrapped = wrap(original)
    for loaded in list(sys.modules.values()):
        if loaded is None:
            continue
        try:
            namespace = vars(loaded)
        except TypeError:
            continue
        for attribute, value in list(namespace.items()):
            if value is original:
                setattr(loaded, attribute, wrapped)


class SecretScanPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.scan = SecretScan()
        self.workdir = Path(tempfile.mkdtemp(prefix="fleet-secret-scan-"))
        self.tee_dir = self.workdir / "logs"
        self.codes_dir = self.workdir / "codes"
        self.tee_dir.mkdir()
        self.codes_dir.mkdir()
        self._saved_env = {name: os.environ.get(name) for name in (LOG_TEE_ENV, ISSUED_CODES_ENV)}
        os.environ[LOG_TEE_ENV] = str(self.tee_dir)
        os.environ[ISSUED_CODES_ENV] = str(self.codes_dir)
        self.tail = Tail()
        self.current = "(before the first test)"
        self.pending: list[tuple[str, str, str]] = []  # (kind, where, text) of the current test
        self.sections: dict[tuple[str, str], str] = {}  # (nodeid, title) -> text, latest wins
        self.metrics_alive: weakref.WeakSet[Any] = weakref.WeakSet()
        self.metrics_held: list[Any] = []  # created during the current test: kept to its end
        self.metrics_seen: dict[int, int] = {}  # id -> hash of the text last scanned
        self.endpoints: set[str] = set()
        self.endpoint_codes: set[str] = set()
        self.own_codes: set[str] = set()  # issued by a sandbox in this process
        self.recorded: set[str] = set()  # recorded by any sandbox process (this one included)
        self.log_processes: set[str] = set()
        self.unreachable: set[str] = set()
        self._install_hooks()

    # -- instrumentation --------------------------------------------------------------------------

    def _install_hooks(self) -> None:
        from controller.engine import render
        from controller.observability.metrics import Metrics
        from fleet_sandbox.client import SandboxClient

        plugin = self

        def capture_render(function: Callable[..., str]) -> Callable[..., str]:
            @functools.wraps(function)
            def rendered(*args: Any, **kwargs: Any) -> str:
                text = function(*args, **kwargs)
                plugin.pending.append(("plan", f"{function.__name__}() in {plugin.current}", text))
                return text

            return rendered

        for name in ("render_text", "render_markdown", "render_json"):
            _replace_everywhere(render, name, capture_render)

        metrics_init = Metrics.__init__

        @functools.wraps(metrics_init)
        def init_metrics(self: Any, *args: Any, **kwargs: Any) -> None:
            metrics_init(self, *args, **kwargs)
            plugin.metrics_alive.add(self)
            plugin.metrics_held.append(self)

        Metrics.__init__ = init_metrics  # type: ignore[method-assign]

        def capture_run(function: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(function)
            def run(*args: Any, **kwargs: Any) -> Any:
                done = function(*args, **kwargs)
                command = done.args if isinstance(done.args, str) else " ".join(map(str, done.args))
                where = f"subprocess `{command[:80]}` in {plugin.current}"
                for stream in (done.stdout, done.stderr):
                    if isinstance(stream, bytes):
                        stream = stream.decode("utf-8", "replace")
                    if isinstance(stream, str):
                        plugin.pending.append(("captured", where, stream))
                return done

            return run

        _replace_everywhere(subprocess, "run", capture_run)

        client_init = SandboxClient.__init__

        @functools.wraps(client_init)
        def init_client(self: Any, endpoint: str, *args: Any, **kwargs: Any) -> None:
            client_init(self, endpoint, *args, **kwargs)
            plugin.endpoints.add(self.endpoint)

        SandboxClient.__init__ = init_client  # type: ignore[method-assign]

    # -- collection -------------------------------------------------------------------------------

    def _ask_sandboxes(self) -> None:
        for endpoint in sorted(self.endpoints):
            codes = route_codes(endpoint)
            if codes is None:
                self.unreachable.add(endpoint)
            else:
                self.endpoint_codes.update(codes)
        self.endpoints.clear()

    def _refresh_codes(self) -> None:
        self._ask_sandboxes()
        self.own_codes.update(in_process_codes())
        self.recorded.update(recorded_codes(self.codes_dir))
        self.scan.know(self.own_codes | self.recorded | self.endpoint_codes)

    def _render_metrics(self) -> None:
        for metrics in [*self.metrics_held, *self.metrics_alive]:
            try:
                text = metrics.text()
            except Exception as error:  # a half-built registry: its text is its error
                text = f"{type(error).__name__}: {error}"
            digest = hash(text)
            if self.metrics_seen.get(id(metrics)) == digest:
                continue
            self.metrics_seen[id(metrics)] = digest
            self.pending.append(("metrics", f"Metrics rendered at the end of {self.current}", text))
        self.metrics_held.clear()

    def _tee_logs(self, final: bool = False) -> None:
        for path, text in self.tail.new_text(self.tee_dir.glob("*.log"), final):
            pid = path.stem
            self.log_processes.add(pid)
            who = "this process" if pid == str(os.getpid()) else f"subprocess {pid}"
            self.pending.append(("log", f"log lines of {who} during {self.current}", text))

    def flush(self, final: bool = False) -> None:
        self._render_metrics()
        self._tee_logs(final)
        for (nodeid, title), text in self.sections.items():
            kind = "log" if title.startswith("Captured log") else "captured"
            self.pending.append((kind, f"{nodeid} [{title}]", text))
        self.sections.clear()
        self._refresh_codes()
        for kind, where, text in self.pending:
            self.scan.feed(kind, where, text)
        self.pending.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.current = item.nodeid

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        # Before fixtures go: the metrics the test left behind, its sandbox still serving.
        self._render_metrics()
        self._ask_sandboxes()
        return (yield)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for title, text in report.sections:
            self.sections[(report.nodeid, title)] = text
        if report.longrepr is not None:
            where = f"{report.nodeid} [{report.when} {report.outcome}]"
            self.pending.append(("exception", where, report.longreprtext))
        if report.when == "teardown":
            self.flush()
            self.current = f"(after {report.nodeid})"

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.longrepr is not None:
            self.pending.append(("exception", f"collecting {report.nodeid}", report.longreprtext))

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.pending.append(("captured", "test ids", "\n".join(item.nodeid for item in items)))

    def pytest_warning_recorded(self, warning_message: Any, nodeid: str) -> None:
        text = f"{warning_message.category.__name__}: {warning_message.message}"
        self.pending.append(("exception", f"warning in {nodeid or 'the session'}", text))

    # -- verdict ----------------------------------------------------------------------------------

    def _scan_temporary_logs(self) -> None:
        factory = getattr(self.config, "_tmp_path_factory", None)
        base = getattr(factory, "_basetemp", None) if factory is not None else None
        if base is None:
            return
        for path in sorted(p for p in Path(base).rglob("*") if p.suffix in OUTPUT_SUFFIXES):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            self.pending.append(("file", str(path.relative_to(base)), text))

    def full_run(self) -> bool:
        option = self.config.option
        explicit = self.config.args_source == pytest.Config.ArgsSource.ARGS
        collecting = option.collectonly  # a collection runs nothing: no code to expect
        return not explicit and not option.keyword and not option.markexpr and not collecting

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.current = "(the end of the session)"
        self._scan_temporary_logs()
        self.flush(final=True)
        if session.exitstatus != pytest.ExitCode.OK:
            return
        if self.scan.findings or (self.full_run() and not self.scan.index.codes):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        scan = self.scan
        write = terminalreporter.write_line
        terminalreporter.section("secret scan")
        per_kind = ", ".join(
            f"{kind} {scan.bytes_by_kind[kind]:,} B in {scan.texts_by_kind[kind]:,}"
            for kind in KINDS
            if scan.texts_by_kind[kind]
        )
        others = len(self.recorded - self.own_codes)
        routed = len(self.endpoint_codes - self.own_codes - self.recorded)
        write(
            f"{len(scan.index.codes)} activation code(s) issued by sandboxes ({len(self.own_codes)}"
            f" in this process, {others} in sandbox subprocesses, {routed} more from"
            " /_sandbox/issued-codes)"
        )
        subprocesses = len(self.log_processes - {str(os.getpid())})
        write(
            f"{scan.bytes_scanned:,} bytes of produced output scanned ({per_kind or 'none'}); "
            f"log lines of this process and {subprocesses} controller subprocess(es)"
        )
        if self.unreachable:
            write(
                f"sandbox endpoints no longer reachable for issued-codes: {len(self.unreachable)}"
            )
        if scan.findings:
            write(f"LEAKED: {len(scan.findings)} occurrence(s) of issued codes", red=True)
            for finding in scan.findings:
                write(f"  {finding}", red=True)
        elif self.full_run() and not scan.index.codes:
            write(
                "FAILED: a full run issued no activation code, so the scan proved nothing", red=True
            )
        else:
            write("no issued code appears in any of it", green=True)

    def pytest_unconfigure(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.workdir, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("fleet-secret-scan"):
        config.pluginmanager.register(SecretScanPlugin(config), "fleet-secret-scan")
