"""Real Prometheus and vmagent processes for end-to-end tests, on 127.0.0.1 only.

The pipeline they form is the one REFERENCE.md verified on this machine:
agent → OTLP/HTTP → vmagent (-opentelemetry.usePrometheusNaming, the same
name translation as ADOT's prometheusremotewrite) → remote write → Prometheus
2.53 (--web.enable-remote-write-receiver, standing in for AMP) → PromQL and
rule evaluation.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

from tests.support.tools import require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process with its log in a file, stopped politely then firmly."""

    def __init__(self, argv: list[str], workdir: Path, name: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = workdir / f"{name}.log"
        self._log_file = self.log.open("wb")
        self._proc = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      cwd=workdir)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready at {url} after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._log_file.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Prometheus(Process):
    def __init__(self, argv: list[str], workdir: Path, port: int) -> None:
        super().__init__(argv, workdir, "prometheus")
        self.url = f"http://127.0.0.1:{port}"
        self.remote_write_url = f"{self.url}/api/v1/write"

    def _api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str, time: float | None = None) -> list[dict]:
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        return list(self._api("query", params)["result"])

    def query_range(self, promql: str, start: float, end: float, step: str = "1s") -> list[dict]:
        return list(self._api("query_range", {"query": promql, "start": start, "end": end,
                                              "step": step})["result"])

    def series(self, match: str) -> list[dict]:
        return list(self._api("series", {"match[]": match}))

    def rules(self) -> list[dict]:
        return [rule for group in self._api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict]:
        return list(self._api("alerts")["alerts"])

    def wait_for(self, promql: str, predicate: Callable[[list[dict]], bool],
                 timeout: float = 30.0) -> list[dict]:
        deadline, last = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            last = self.query(promql)
            if predicate(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"{promql!r} never satisfied the condition in {timeout}s; "
                             f"last result: {last}")


def start_prometheus(workdir: Path, *, rule_files: Sequence[Path] = (),
                     evaluation_interval: str = "1s",
                     extra_flags: Sequence[str] = ()) -> Prometheus:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    rules = "".join(f"  - {Path(r).resolve()}\n" for r in rule_files)
    config.write_text(f"global:\n  evaluation_interval: {evaluation_interval}\n"
                      f"  scrape_interval: {evaluation_interval}\n"
                      + (f"rule_files:\n{rules}" if rules else ""))
    port = free_port()
    argv = [require_tool("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver", *extra_flags]
    prometheus = Prometheus(argv, workdir, port)
    prometheus.wait_ready(f"{prometheus.url}/-/ready")
    return prometheus


class Vmagent(Process):
    def __init__(self, argv: list[str], workdir: Path, port: int) -> None:
        super().__init__(argv, workdir, "vmagent")
        self.url = f"http://127.0.0.1:{port}"
        self.otlp_base_url = f"{self.url}/opentelemetry"
        self.otlp_metrics_url = f"{self.otlp_base_url}/v1/metrics"


def start_vmagent(workdir: Path, *, remote_write_url: str,
                  extra_flags: Sequence[str] = ()) -> Vmagent:
    port = free_port()
    argv = [require_tool("vmagent"), f"-httpListenAddr=127.0.0.1:{port}",
            f"-remoteWrite.url={remote_write_url}",
            f"-remoteWrite.tmpDataPath={workdir / 'vmagent-data'}",
            "-remoteWrite.flushInterval=1s", "-opentelemetry.usePrometheusNaming",
            "-loggerLevel=WARN", *extra_flags]
    vmagent = Vmagent(argv, workdir, port)
    vmagent.wait_ready(f"{vmagent.url}/health")
    return vmagent
