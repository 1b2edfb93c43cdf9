"""Real parts for the end-to-end tests: the controller as a subprocess, and a Prometheus server.

The controller runs exactly as in production (``python -m controller.cli run ...``) against the
sandbox over HTTP; Prometheus is Debian's ``prometheus`` binary, scraping the controller and
evaluating the shipped alert rules (with their ``for:`` shortened, in a temporary copy).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(
    check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = ""
) -> Any:
    """``check()``'s first truthy result within ``timeout`` seconds; fail with ``what`` if none."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what or check.__name__} (last: {last!r})")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Controller:
    """``fleet-controller run`` in a subprocess, its JSON log in a file, its /metrics over HTTP."""

    def __init__(
        self,
        args: Sequence[str],
        workdir: Path,
        name: str = "controller",
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        command = [
            sys.executable, "-m", "controller.cli", "run", *args,
            "--metrics-host", "127.0.0.1", "--metrics-port", str(self.port),
            "--log-format", "json", "--controller-id", "e2e",
        ]  # fmt: skip
        environment = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        environment.pop("AWS_PROFILE", None)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=environment, cwd=ROOT
        )
        eventually(self._serving, 60, what=f"{name} serving /healthz")

    @property
    def target(self) -> str:
        """Prometheus's name for this scrape target."""
        return f"127.0.0.1:{self.port}"

    def _serving(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.log()}")
        try:
            return http_get(f"{self.url}/healthz", timeout=1)[0] == 200
        except OSError:
            return False

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample: (name, sorted labels) -> value. Empty when the process is gone."""
        try:
            status, body = http_get(f"{self.url}/metrics", timeout=5)
        except OSError:
            return {}
        if status != 200:
            return {}
        samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def values(self, name: str, **match: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Samples of ``name`` whose labels include ``match``."""
        return {
            labels: value
            for (sample, labels), value in self.metrics().items()
            if sample == name and all((k, v) in labels for k, v in match.items())
        }

    def revision(self) -> str | None:
        found = self.values("fleet_desired_state_info")
        return dict(next(iter(found))).get("revision") if len(found) == 1 else None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == event:
                found.append(entry)
        return found

    def stop(self) -> int:
        """SIGTERM, as Kubernetes and ECS stop a task; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return int(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no lease release (a crashed node)."""
        self.process.kill()
        self.process.wait()


class Prometheus:
    """A Prometheus server on a free port with its own storage, scraping every second."""

    def __init__(self, workdir: Path, targets: Sequence[str], rules: Path = ALERT_RULES) -> None:
        if PROMETHEUS is None:
            raise AssertionError(
                "the prometheus binary is missing: .ci/system-packages installs it "
                "(apt-get install prometheus)"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules_copy = workdir / "alerts.yaml"
        rules_copy.write_text(yaml.safe_dump(shortened_rules(rules)), encoding="utf-8")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_copy)],
            "scrape_configs": [
                {
                    "job_name": "fleet-controller",
                    "scrape_timeout": "1s",
                    "static_configs": [{"targets": list(targets)}],
                }
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self._log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        eventually(self._ready, 60, what="prometheus ready")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited {self.process.returncode}")
        try:
            return http_get(f"{self.url}/-/ready", timeout=1)[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}")
        assert status == 200, body
        return json.loads(body)["data"]

    def alerts(self, name: str, state: str = "firing") -> list[dict[str, Any]]:
        """Prometheus's own view: active alerts named ``name`` in ``state``."""
        return [
            alert
            for alert in self.api("alerts")["alerts"]
            if alert["labels"].get("alertname") == name and alert["state"] == state
        ]

    def active(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        result = self.api("query", query=expr)["result"]
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(
                r["value"][1]
            )
            for r in result
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def shortened_rules(path: Path, duration: str = "2s") -> dict[str, Any]:
    """The shipped rules with every ``for:`` cut to ``duration`` (the expressions unchanged)."""
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = duration
            rule.pop("keep_firing_for", None)
    return rules
