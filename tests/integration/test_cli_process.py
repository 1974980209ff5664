"""The real command in a subprocess: signals, exit codes, `once`, `probes`, `check-config`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.otlp_sink import OtlpHttpSink

ROOT = Path(__file__).parent.parent.parent
FAKE_PROC = str(ROOT / "tests" / "data" / "proc")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true"}


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_netreceiver", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _write(path: Path, endpoint: str, interval: str = "30s", extra: str = "") -> None:
    path.write_text(f"interval: {interval}\nproc_root: {FAKE_PROC}\nsys_root: /nonexistent\n"
                    f"collectors:\n  ena:\n    enabled: false\n{extra}"
                    f"exporters:\n  otlp:\n    endpoint: {endpoint}\n    timeout: 2s\n")


@pytest.fixture
def sink():
    s = OtlpHttpSink()
    yield s
    s.close()


def test_sigterm_flushes_a_final_export_and_exits_zero(sink, tmp_path) -> None:
    cfg = tmp_path / "agent.yaml"
    _write(cfg, sink.endpoint, interval="30s")  # no periodic export before SIGTERM
    proc = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c", str(cfg)],
                            env=ENV, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    before = len(sink.requests)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(sink.requests) > before  # the final flush
    assert "stopped after a final export" in err


def test_sighup_reloads_and_bad_reload_keeps_running(sink, tmp_path) -> None:
    cfg = tmp_path / "agent.yaml"
    _write(cfg, sink.endpoint, interval="1s")
    proc = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c", str(cfg)],
                            env=ENV, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert sink.wait_for(lambda v: any(k[0] == "system.network.io" for k in v), timeout=15)
        cfg.write_text(cfg.read_text() + "interval: [\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert proc.poll() is None
        _write(cfg, sink.endpoint, interval="1s", extra="  netdev:\n    enabled: false\n")
        proc.send_signal(signal.SIGHUP)
        assert sink.wait_for(lambda v: not any(k[0] == "system.network.io" for k in v), 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "configuration reload rejected" in err and "agent.yaml:" in err
    assert "configuration reloaded" in err


def test_invalid_config_at_start_exits_2_naming_file_line_key(tmp_path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("collectors:\n  ena:\n    interval: 5s\n")
    result = _cli("run", "-c", str(cfg))
    assert result.returncode == 2
    assert f"{cfg}:3: collectors.ena.interval: unknown key" in result.stderr


def test_once_json_and_probes(tmp_path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"proc_root: {FAKE_PROC}\nsys_root: /nonexistent\n")
    result = _cli("once", "-c", str(cfg), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    probes = {p["name"]: p for p in data["probes"]}
    assert probes["netdev"]["active"]
    assert not probes["ena"]["active"] and "no ENA interface" in probes["ena"]["reason"]
    rx = [s for s in data["series"] if s["prometheus_name"] == "system_network_io_bytes_total"
          and s["attributes"]["network.interface.name"] == "eth0"
          and s["attributes"]["network.io.direction"] == "receive"]
    assert rx[0]["value"] == 9876543210
    text = _cli("probes", "-c", str(cfg))
    assert text.returncode == 0 and "ena" in text.stdout and "unavailable" in text.stdout


def test_check_config(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("interval: 20s\n")
    assert _cli("check-config", str(good)).returncode == 0
    assert _cli("check-config", str(tmp_path / "none.yaml")).returncode == 2


def test_reports_on_the_same_file_never_take_the_running_agents_socket(sink, tmp_path) -> None:
    """`probes -c` and `once -c` on the running agent's file: the agent still answers."""
    sock = tmp_path / "run" / "api.sock"
    cfg = tmp_path / "agent.yaml"
    # the real /proc: the node API identifies its caller (this test, root) by its cgroup
    cfg.write_text(f"interval: 1s\nsys_root: /nonexistent\ncollectors:\n  ena:\n"
                   f"    enabled: false\n  ebpf:\n    enabled: false\n"
                   f"correlation:\n  socket: {sock}\n"
                   f"exporters:\n  otlp:\n    endpoint: {sink.endpoint}\n    timeout: 2s\n")
    proc = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c", str(cfg)],
                            env=ENV, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        inode = sock.stat().st_ino
        assert _cli("probes", "-c", str(cfg)).returncode == 0
        assert _cli("once", "-c", str(cfg), "--format", "json").returncode == 0
        assert sock.stat().st_ino == inode  # the same socket file, not unlinked or rebound
        asked = _cli("diagnose", "-c", str(cfg), "--format", "json")
        assert asked.returncode == 0, asked.stderr
        assert "findings" in json.loads(asked.stdout)
        # a second agent started on the same file keeps its hands off the socket, and says so
        second = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c",
                                   str(cfg)], env=ENV, cwd=ROOT, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(4)
        second.send_signal(signal.SIGTERM)
        _, second_err = second.communicate(timeout=30)
        assert "another agent is listening" in second_err, second_err
        assert sock.stat().st_ino == inode
        assert _cli("diagnose", "-c", str(cfg), "--format", "json").returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
