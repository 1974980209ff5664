"""Real Prometheus and vmagent processes for end-to-end tests, on 127.0.0.1 only.

They form a pipeline verified on this kind of machine, standing in for
ADOT → AMP: agent → OTLP/HTTP → vmagent (``-opentelemetry.usePrometheusNaming``)
→ Prometheus remote write → Prometheus 2.53 (``--web.enable-remote-write-receiver``)
→ PromQL and rule evaluation. Real binaries, not fakes, because the point is to
observe the name translation and rule behaviour the deployed system will see.

Nothing here depends on pytest: scripts and benchmarks can use it too. The
binaries come from ``scripts/install-deps.sh`` through ``tests.support.tools``.
"""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import requests

from tests.support.tools import require_tool

HOST = "127.0.0.1"  # never anything else: tests must not send traffic off this machine
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3  # free_port() can race another process; retry start on "address in use"


class BackendError(RuntimeError):
    """A backend failed to start, or its API answered with an error."""


class WaitTimeout(AssertionError):
    """A condition polled on a backend never held; an AssertionError so tests report a failure."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent_hook() -> Callable[[], None]:
    """A preexec_fn that makes the child get SIGTERM when the test process dies.

    A killed pytest (CI timeout, ^C twice) would otherwise leave Prometheus and
    vmagent running with their ports and memory. prctl is looked up here, in the
    parent, so the forked child only calls an already-resolved function (no
    dynamic loader work between fork and exec while other threads may exist).
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


class BackendProcess:
    """A backend child process whose output goes to ``<workdir>/<name>.log``.

    Stopped politely (SIGTERM) and then firmly (SIGKILL); usable as a context
    manager. Subclasses add the backend's HTTP API.
    """

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, port: int) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log_path = workdir / f"{name}.log"
        # trust_env off: a proxy from the environment must never see (or divert) these requests
        self.http = requests.Session()
        self.http.trust_env = False
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(self.argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent_hook())

    @property
    def pid(self) -> int:
        return self._proc.pid

    def running(self) -> bool:
        return self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, path: str, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``path`` until it answers 200; stop the process and raise if it never does."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.running():
                raise BackendError(f"{self.name} exited with status {self._proc.returncode} "
                                   f"before it was ready; log tail:\n{self.log_tail()}")
            try:
                response = self.http.get(self.url + path, timeout=1)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        self.stop()
        raise BackendError(f"{self.name} not ready at {self.url}{path} after {timeout:.0f}s "
                           f"(last: {last}); log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Safe to call twice."""
        self.http.close()
        if not self.running():
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} {self.url}>"


B = TypeVar("B", bound=BackendProcess)


def _start(make: Callable[[int], B], ready_path: str) -> B:
    """Start a backend on a fresh port and wait for it; retry if the port was taken meanwhile."""
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        backend = make(free_port())
        try:
            backend.wait_ready(ready_path)
            return backend
        except BackendError:
            backend.stop()
            if attempt == _PORT_ATTEMPTS or "address already in use" not in backend.log_tail():
                raise
    raise AssertionError("unreachable")


class Prometheus(BackendProcess):
    """Prometheus 2.53 accepting remote write, with a small client for its HTTP API."""

    def __init__(self, argv: Sequence[str], workdir: Path, port: int) -> None:
        super().__init__("prometheus", argv, workdir, port)
        self.remote_write_url = f"{self.url}/api/v1/write"

    def api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET /api/v1/<path> and return ``data``; raise with Prometheus's error text."""
        try:
            response = self.http.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise BackendError(f"Prometheus /api/v1/{path} {params}: {exc}; "
                               f"log tail:\n{self.log_tail(10)}") from exc
        if body.get("status") != "success":
            raise BackendError(f"Prometheus /api/v1/{path} {params}: "
                               f"{body.get('errorType', '?')}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str, time: float | None = None) -> list[dict]:
        """Instant query; the ``result`` list (vector elements: ``metric`` and ``value``)."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        return list(self.api("query", params)["result"])

    def query_range(self, promql: str, start: float, end: float,
                    step: str | float = "1s") -> list[dict]:
        """Range query; the ``result`` list (matrix elements: ``metric`` and ``values``)."""
        params = {"query": promql, "start": start, "end": end, "step": step}
        return list(self.api("query_range", params)["result"])

    def series(self, match: str) -> list[dict]:
        """Label sets of the series matching ``match`` (a selector), over the default range."""
        return list(self.api("series", {"match[]": match}))

    def rules(self) -> list[dict]:
        """Every loaded rule, flattened out of its group (the group's name added as ``group``)."""
        return [{**rule, "group": group["name"]}
                for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict]:
        """Active alerts (pending and firing)."""
        return list(self.api("alerts")["alerts"])

    def wait_for(self, promql: str, predicate: Callable[[list[dict]], Any],
                 timeout: float = 20.0, interval: float = 0.25) -> list[dict]:
        """Poll an instant query until ``predicate(result)`` is true; return that result.

        Remote-written samples and rule results arrive asynchronously, so tests
        poll with a bound instead of sleeping a guessed time.
        """
        deadline = time.monotonic() + timeout
        while True:
            last = self.query(promql)
            if predicate(last):
                return last
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{promql!r} did not satisfy the condition within "
                                  f"{timeout:g}s; last result: {last}")
            time.sleep(interval)


def _prometheus_config(rule_files: Sequence[Path], evaluation_interval: str,
                       scrape_configs: Sequence[dict[str, Any]]) -> str:
    """prometheus.yml as JSON (which is YAML): rule files, the intervals, no scrape jobs."""
    config: dict[str, Any] = {
        "global": {"evaluation_interval": evaluation_interval,
                   "scrape_interval": evaluation_interval},
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": list(scrape_configs),
    }
    return json.dumps(config, indent=2) + "\n"


def start_prometheus(workdir: Path, *, rule_files: Sequence[Path] = (),
                     evaluation_interval: str = "1s", extra_flags: Sequence[str] = (),
                     scrape_configs: Sequence[dict[str, Any]] = ()) -> Prometheus:
    """Start Prometheus in ``workdir`` (config, TSDB and log all inside it) and wait for /-/ready.

    A 1s evaluation interval makes recording and alert rules observable within
    a test's time budget. ``extra_flags`` are appended and must not repeat a
    flag set here (Prometheus refuses repeated flags).
    """
    binary = require_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(_prometheus_config(rule_files, evaluation_interval, scrape_configs))

    def make(port: int) -> Prometheus:
        argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address={HOST}:{port}", "--web.enable-remote-write-receiver",
                *extra_flags]
        return Prometheus(argv, workdir, port)

    return _start(make, "/-/ready")


class Vmagent(BackendProcess):
    """vmagent receiving OTLP/HTTP and remote-writing to one URL."""

    def __init__(self, argv: Sequence[str], workdir: Path, port: int) -> None:
        super().__init__("vmagent", argv, workdir, port)
        # An OTLP/HTTP exporter given this as its base endpoint appends /v1/metrics
        self.otlp_base_url = f"{self.url}/opentelemetry"
        self.otlp_metrics_url = f"{self.otlp_base_url}/v1/metrics"

    def self_metrics(self) -> str:
        """vmagent's own /metrics text (remote-write errors and drops show up here)."""
        return self.http.get(f"{self.url}/metrics", timeout=5).text


def vmagent_flags(port: int, remote_write_url: str, queue_dir: Path) -> list[str]:
    """The flags start_vmagent uses, each with the reason it is there."""
    return [
        f"-httpListenAddr={HOST}:{port}",  # OTLP receiver + /health, loopback only
        f"-remoteWrite.url={remote_write_url}",
        f"-remoteWrite.tmpDataPath={queue_dir}",  # its on-disk queue, inside the test's dir
        # OTLP names → Prometheus names (dots → _, unit and _total suffixes), as ADOT does
        "-opentelemetry.usePrometheusNaming",
        # AMP and Prometheus speak Prometheus remote write: skip the VictoriaMetrics-protocol probe
        "-remoteWrite.forcePromProto=true",
        "-remoteWrite.flushInterval=1s",  # send buffered samples every second (the default too)
        # one queue keeps a series' samples in order: Prometheus rejects out-of-order samples
        # with HTTP 400, and vmagent drops a rejected block
        "-remoteWrite.queues=1",
        "-remoteWrite.retryMinInterval=200ms",  # recover quickly if Prometheus was slow to start
    ]


def start_vmagent(workdir: Path, *, remote_write_url: str,
                  extra_flags: Sequence[str] = ()) -> Vmagent:
    """Start vmagent in ``workdir`` forwarding to ``remote_write_url``; wait for /health.

    ``extra_flags`` are appended: a repeated scalar flag overrides the default
    here, a repeated list flag (``-remoteWrite.url``) adds a value.
    """
    binary = require_tool("vmagent")
    workdir.mkdir(parents=True, exist_ok=True)

    def make(port: int) -> Vmagent:
        argv = [binary, *vmagent_flags(port, remote_write_url, workdir / "queue"), *extra_flags]
        return Vmagent(argv, workdir, port)

    return _start(make, "/health")


class Pipeline(NamedTuple):
    """vmagent remote-writing into Prometheus: send OTLP to ``vmagent``, query ``prometheus``."""

    prometheus: Prometheus
    vmagent: Vmagent


@contextmanager
def running_pipeline(workdir: Path, *, rule_files: Sequence[Path] = (),
                     evaluation_interval: str = "1s") -> Iterator[Pipeline]:
    """Prometheus in ``workdir/prometheus`` fed by vmagent in ``workdir/vmagent``; both stopped
    on exit, vmagent first so that it never retries against a Prometheus that is gone."""
    with start_prometheus(workdir / "prometheus", rule_files=rule_files,
                          evaluation_interval=evaluation_interval) as prometheus, \
            start_vmagent(workdir / "vmagent",
                          remote_write_url=prometheus.remote_write_url) as vmagent:
        yield Pipeline(prometheus, vmagent)
