"""The one BPF loader: counting and event probes read the same tracefs, load, give memory back.

Runs on the real kernel: tracepoint formats from this kernel's tracefs (copied,
or tracefs mounted a second time), programs compiled by bcc and attached.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.loader import RELEASE_EVERY, BpfLoader, Formats
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.programs import ProbeSpec, render
from otel_netreceiver.bpf.tracefs import tracefs_root
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
from otel_netreceiver.events.source import EventSource
from otel_netreceiver.k8s.directory import NoPods

pytestmark = pytest.mark.root
TRACEFS = tracefs_root()
if os.geteuid() != 0 or TRACEFS is None or not Path("/sys/kernel/btf/vmlinux").exists():
    pytest.skip("needs root, tracefs and BTF", allow_module_level=True)


def _doctored_tracefs(root: Path) -> str:
    """A tracefs copy holding only skb:kfree_skb, whose format has lost its reason field."""
    assert TRACEFS is not None
    text = Path(TRACEFS, "events/skb/kfree_skb/format").read_text()
    kept = "".join(line for line in text.splitlines(keepends=True)
                   if not line.strip().startswith("field:enum skb_drop_reason reason"))
    assert kept != text, "this kernel's kfree_skb has no reason field to remove"
    target = root / "events" / "skb" / "kfree_skb"
    target.mkdir(parents=True)
    (target / "format").write_text(kept)
    return str(root)


def _both(tracefs: str) -> tuple[dict[str, str], dict[str, str]]:
    """Statuses of the counting and of the event probes for packetloss and resets."""
    config = EbpfConfig(probes=["packetloss", "tcpreset"], tracefs_path=tracefs)
    counting = EbpfCollector(config, "/proc", NoPods())
    events = EventSource(EventsConfig(types=["PACKETLOSS", "TCP_SEND_RST"]), config, "/proc",
                         NoPods(), lambda event: None)
    try:
        return counting.statuses(), dict(events.statuses)
    finally:
        counting.close()
        events.close()


def test_counting_and_event_probes_take_formats_from_the_configured_tracefs(tmp_path) -> None:
    counting, events = _both(_doctored_tracefs(tmp_path))
    for statuses in (counting, events):
        assert "no field 'reason'" in statuses["packetloss"], statuses
        assert statuses["tcpreset"] == \
            "tracepoint tcp:tcp_send_reset does not exist on this kernel", statuses


def test_a_configured_path_without_tracefs_stops_both_kinds_of_probe(tmp_path) -> None:
    counting, events = _both(str(tmp_path / "nothing"))
    for statuses in (counting, events):
        assert set(statuses) == {"packetloss", "tcpreset"}
        assert all(r.startswith("tracefs is not mounted") for r in statuses.values()), statuses


def test_nothing_loaded_means_nothing_to_page_out(tmp_path) -> None:
    loader = BpfLoader(EbpfConfig(tracefs_path=str(tmp_path)), "/proc")
    assert loader.load_all([PROBES["net_softirq"]], _render) == {}
    assert loader.released is None and loader.tick() is None


@pytest.fixture
def second_tracefs(tmp_path) -> Iterator[str]:
    """This kernel's tracefs mounted a second time, at a path of the test's own."""
    mount = tmp_path / "tracing"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tracefs", "nodev", str(mount)], check=True)
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_event_probes_load_from_tracefs_mounted_elsewhere(second_tracefs) -> None:
    source = EventSource(EventsConfig(types=["PACKETLOSS"]),
                         EbpfConfig(tracefs_path=second_tracefs), "/proc", NoPods(),
                         lambda event: None)
    try:
        assert source.statuses == {"packetloss": ""}
        assert source.loaded == ("packetloss",)
    finally:
        source.close()


def _render(spec: ProbeSpec, formats: Formats, btf: Btf | None) -> str:
    return render(spec, formats, {"TIMING_SAMPLE": 1})  # every event timed


def test_after_compiling_the_compiler_libraries_are_paged_out(second_tracefs) -> None:
    loader = BpfLoader(EbpfConfig(tracefs_path=second_tracefs), "/proc")
    loaded = loader.load_all([PROBES["net_softirq"]], _render)
    try:
        assert loader.statuses == {"net_softirq": ""}
        assert set(loader.formats) == {("irq", "softirq_raise"), ("irq", "softirq_entry"),
                                       ("irq", "softirq_exit")}
        released = loader.released
        assert released is not None and released.mappings > 0, released
        assert released.paged_out > 0 and released.dropped > 0 and released.errors == ()
        again = [loader.tick() for _ in range(RELEASE_EVERY + 1)]
        assert [i for i, r in enumerate(again) if r is not None] == [0, RELEASE_EVERY]
    finally:
        for bpf in loaded.values():
            bpf.cleanup()
