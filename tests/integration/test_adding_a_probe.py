"""A probe registered in one place is loaded, read, documented and validated.

The test does what docs/architecture.md's "Adding a probe" tells a newcomer: it copies
the package, puts a probe folder (tests/support/testprobe: a counting program and its
module) into bpf/probes/, appends it to ``REGISTERED``, and changes nothing else. The
copy then accepts the probe in its configuration and refuses an unknown one, lists its
metric in the generated docs, renders and prints its program, and (with root and bcc)
loads it through the ordinary eBPF collector, which reads its map into a point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support" / "testprobe"
METRIC = "netreceiver.test.getppid.calls"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with testprobe registered, and nothing else changed."""
    root = tmp_path_factory.mktemp("pkg")
    shutil.copytree(ROOT / "otel_netreceiver", root / "otel_netreceiver",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SUPPORT, root / "otel_netreceiver" / "bpf" / "probes" / "testprobe",
                    ignore=shutil.ignore_patterns("__pycache__"))
    registry = root / "otel_netreceiver" / "bpf" / "probes" / "__init__.py"
    text = registry.read_text()
    last = "    peers.PROBE,\n)"
    assert text.count(last) == 1, "the registry's last entry moved: update this test"
    text = text.replace(last, "    peers.PROBE,\n    testprobe.PROBE,\n)")
    text = text.replace("from otel_netreceiver.bpf.programs import ProbeSpec\n",
                        "from otel_netreceiver.bpf.probes import testprobe\n"
                        "from otel_netreceiver.bpf.programs import ProbeSpec\n")
    registry.write_text(text)
    return root


def _python(package: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{package}:{ROOT / 'sdk'}"}
    # run from the copy: ``-c`` puts the working directory first on sys.path
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=package,
                          capture_output=True, text=True, timeout=300)


CHECKS = """
import json
from otel_netreceiver.bpf.probes import PROBES, UNITS
from otel_netreceiver.bpf.programs import render
from otel_netreceiver.config.loader import ConfigError, load_text
from otel_netreceiver.docsgen import configuration_markdown, metrics_markdown
import otel_netreceiver.bpf.probes.testprobe as unit

out = {"module": unit.__file__, "registered": "testprobe" in UNITS}
cfg = load_text("collectors:\\n  ebpf:\\n    probes: [testprobe, packetloss]\\n").config
out["accepted"] = cfg.collectors.ebpf.probes
try:
    load_text("collectors:\\n  ebpf:\\n    probes: [nosuchprobe]\\n")
    out["refused"] = ""
except ConfigError as exc:
    out["refused"] = str(exc)
out["metrics_doc"] = [line for line in metrics_markdown().splitlines()
                      if "netreceiver.test.getppid.calls" in line]
out["config_doc"] = [line for line in configuration_markdown().splitlines()
                     if line.startswith("| `collectors.ebpf.probes`")]
out["rendered"] = render(PROBES["testprobe"], {}, {"TIMING_SAMPLE": 1})
print(json.dumps(out))
"""


def test_a_registered_probe_is_validated_documented_and_rendered(package: Path) -> None:
    result = _python(package, CHECKS)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["module"].startswith(str(package)) and out["registered"]
    assert out["accepted"] == ["testprobe", "packetloss"]
    assert "nosuchprobe" in out["refused"] and "testprobe" in out["refused"]
    [row] = out["metrics_doc"]
    assert "| counter |" in row and "getppid() calls (probe testprobe)." in row
    [config_row] = out["config_doc"]
    assert "`testprobe`" in config_row and "testprobe exists only in tests" in config_row
    # the shared headers first (the lost map every probe has), then the probe's own C
    assert out["rendered"].index("BPF_PERCPU_ARRAY(lost") < out["rendered"].index("on_getppid")


LOAD = """
import json, os, sys
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods

collector = EbpfCollector(EbpfConfig(probes=["testprobe"]), "/proc", NoPods())
try:
    for _ in range(int(sys.argv[1])):
        os.getppid()
    points = collector.collect().points
    print(json.dumps({"statuses": collector.statuses(),
                      "calls": [p.value for p in points if p.metric.name == sys.argv[2]],
                      "lost": [dict(p.attributes) for p in points
                               if p.metric.name == "netreceiver.bpf.lost"]}))
finally:
    collector.close()
"""


def test_a_registered_probe_is_loaded_and_read_by_the_collector(package: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("loading a BPF program needs root")
    pytest.importorskip("bcc", reason="bcc (python3-bpfcc) is not installed")
    if not Path("/sys/kernel/tracing/events/syscalls/sys_enter_getppid").is_dir():
        pytest.skip("this kernel has no syscalls:sys_enter_getppid tracepoint")
    result = _python(package, LOAD, "5000", METRIC)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["statuses"] == {"testprobe": ""}  # loaded
    [calls] = out["calls"]
    assert calls >= 5000  # every call this process made (others on the host may add a few)
    assert out["lost"] == [{"probe": "testprobe"}]


def test_print_program_knows_the_registered_probe(package: Path) -> None:
    if os.geteuid() != 0 or not Path("/sys/kernel/tracing/events/syscalls").is_dir():
        pytest.skip("rendering from this kernel's tracefs needs root")
    result = _python(package, "from otel_netreceiver.cli import main; import sys; "
                     "sys.exit(main(['probes', '--print-program', 'testprobe']))")
    assert result.returncode == 0, result.stderr
    assert "int on_getppid(void *args)" in result.stdout
