"""Every kind of bad configuration, at start and on reload, through the real command.

At start the command must exit 2 with ``file:line: key: problem`` (line and key
where the file has them). On reload (SIGHUP) the same files must be rejected
with the same message while the last good configuration keeps running and
exporting, and a good file afterwards must still apply. The "unreadable" kind
is a real EACCES: the agent runs as root without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (capsh), so a mode-000 file is refused by the kernel.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_netreceiver.config.schema import BPF_PROBES
from tests.support.otlp_sink import OtlpHttpSink
from tests.support.soak import record, wait_until

pytestmark = pytest.mark.soak

ROOT = Path(__file__).parent.parent.parent
FAKE_PROC = str(ROOT / "tests" / "data" / "proc")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true"}
NO_DAC = "cap_dac_override,cap_dac_read_search"


def _good(endpoint: str, exclude: str = "ens5") -> str:
    return (f"interval: 1s\nproc_root: {FAKE_PROC}\nsys_root: /nonexistent\n"
            "collectors:\n  ena: {enabled: false}\n  ebpf: {enabled: false}\n"
            f"  netdev: {{exclude_interfaces: [{exclude}]}}\n"
            f"exporters:\n  otlp: {{endpoint: '{endpoint}', timeout: 1s}}\n")


def _text(content: str | bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        if path.is_dir():
            path.rmdir()
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return write


def _unreadable(path: Path) -> None:
    path.write_text("interval: 1s\n")
    path.chmod(0)


def _directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


def _missing(path: Path) -> None:
    if path.is_dir():
        path.rmdir()
    path.unlink(missing_ok=True)


# kind → (make the file, expected message after "<file>")
KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "syntax error": (_text("interval: 1s\ncollectors:\n  ena: {enabled: false\n"),
                     ":4: (top level): YAML syntax error: expected ',' or '}', but got "
                     "'<stream end>' (while parsing a flow mapping started at line 3)"),
    "tab indentation": (_text("interval:\t1s\n"), ":1: (top level): YAML syntax error: "
                        "found character '\\t' that cannot start any token"),
    "unknown key": (_text("interval: 1s\ncollectors:\n  netdev:\n    exclude: [lo]\n"),
                    ":4: collectors.netdev.exclude: unknown key (known: enabled, "
                    "exclude_interfaces)"),
    "wrong type": (_text("interval: 1s\nmax_series_per_instrument: lots\n"),
                   ":2: max_series_per_instrument: expected a whole number, got 'lots'"),
    "unknown pod probe": (_text("collectors:\n  podnet:\n    probes: [snmp, tcpinfo]\n"),
                          ":3: collectors.podnet.probes: unknown value 'tcpinfo': must be "
                          "one of netdev, snmp"),
    "unknown eBPF probe": (_text("collectors:\n  ebpf:\n    probes: [packetloss, biolat]\n"),
                           ":3: collectors.ebpf.probes: unknown value 'biolat': must be one "
                           f"of {', '.join(BPF_PROBES)}"),
    "not a mapping": (_text("- interval: 1s\n"), ":1: (top level): expected a mapping, "
                      "got a list"),
    "empty file": (_text(""), ": (top level): the file is empty"),
    "only comments": (_text("# to do\n"), ": (top level): the file is empty"),
    "not UTF-8": (_text(b"interval: 1s\nservice_name: caf\xe9\n"),
                  ":2: (top level): not UTF-8 text: invalid continuation byte (byte 0xe9)"),
    "unreadable": (_unreadable, ": (top level): cannot read the file: Permission denied"),
    "a directory": (_directory, ": (top level): cannot read the file: Is a directory"),
    "missing": (_missing, ": (top level): cannot read the file: No such file or directory"),
}


def _without_dac() -> list[str]:
    """The prefix that runs a command as root minus the DAC override capabilities."""
    if os.geteuid() != 0 or not shutil.which("capsh"):
        pytest.skip("the unreadable-file case needs root and capsh (libcap2-bin) to drop "
                    "CAP_DAC_OVERRIDE; root reads mode-000 files otherwise")
    return ["capsh", f"--drop={NO_DAC}", "--"]


def _command(*args: str) -> list[str]:
    cmd = " ".join([sys.executable, "-m", "otel_netreceiver", *args])
    return [*_without_dac(), "-c", f"exec {cmd}"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_file_is_rejected_at_start_naming_file_line_and_key(kind: str, tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    make, message = KINDS[kind]
    make(path)
    result = subprocess.run(_command("run", "-c", str(path)), env=ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"invalid configuration: {path}{message}" in result.stderr


def test_every_bad_reload_keeps_the_last_good_configuration_running(tmp_path) -> None:
    sink = OtlpHttpSink()
    path, log = tmp_path / "agent.yaml", tmp_path / "agent.log"
    path.write_text(_good(sink.endpoint))
    with log.open("w") as err:
        proc = subprocess.Popen(_command("run", "-c", str(path)), env=ENV, cwd=ROOT,
                                stderr=err)
    eth0 = ("system.network.io", (("network.interface.name", "eth0"),
                                  ("network.io.direction", "receive")))

    def interfaces() -> set[str]:
        return {dict(k[1]).get("network.interface.name") for k in sink.latest_values()
                if k[0] == "system.network.io"}

    try:
        wait_until(lambda: eth0 in sink.latest_values(), 20)
        for number, (kind, (make, message)) in enumerate(KINDS.items(), start=1):
            make(path)
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda n=number: log.read_text().count("reload rejected") == n, 10)
            assert f"{path}{message}" in log.read_text(), kind
            count = len(sink.requests)
            wait_until(lambda c=count: len(sink.requests) > c, 5)  # still exporting
            assert proc.poll() is None, kind
            assert interfaces() == {"eth0", "lo"}, kind  # the good config: ens5 excluded
        _text(_good(sink.endpoint, exclude="lo"))(path)
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: interfaces() == {"eth0", "ens5"}, 10)  # a good file still applies
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        sink.close()
        if path.exists():
            path.chmod(0o600)
    text = log.read_text()
    record("bad config on reload (SIGHUP)", kinds=len(KINDS),
           rejected=text.count("reload rejected"), applied=text.count("configuration reloaded"),
           agent_restarts=0)
    assert proc.returncode == 0
    assert text.count("reload rejected") == len(KINDS)
    assert "Traceback" not in text
