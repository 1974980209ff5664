"""A node-API question's read of the eBPF maps is only a read of the maps.

The SDK gives the agent 200 ms to answer, and a question reads the eBPF collector again
first (runtime/correlation.py). Two slow things used to happen on that read: the first drop
ever read parsed /proc/kallsyms (~0.2 s of CPU) to name its drop site, and every 20th read
paged the compiler libraries out (bpf/trim.py: smaps read, madvise). Both now happen
elsewhere: kallsyms when packetloss loads, the page-out after the collector's own cycles
(runtime/scheduler.py). Real kernel: bcc, skb:kfree_skb, UDP to a closed port on loopback.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from otel_netreceiver.bpf import loader
from otel_netreceiver.bpf.kallsyms import Kallsyms
from otel_netreceiver.bpf.loader import RELEASE_EVERY
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from otel_netreceiver.runtime.scheduler import CollectorRunner

pytestmark = pytest.mark.root

if os.geteuid() != 0 or not Path("/sys/kernel/btf/vmlinux").exists():
    pytest.skip("needs root and BTF", allow_module_level=True)


class _Kept:
    def __init__(self) -> None:
        self.collections: list[Collection] = []

    def update(self, collection: Collection) -> None:
        self.collections.append(collection)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sites(collection: Collection) -> dict[str, float]:
    return {dict(p.attributes)["drop.location"]: p.value  # type: ignore[misc]
            for p in collection.points if p.metric.name == "netreceiver.packet.drop_sites"
            and dict(p.attributes)["drop.reason"] == "NO_SOCKET"}


def test_a_questions_read_neither_pages_out_nor_reads_kallsyms(monkeypatch) -> None:
    tables, releases = [], []
    load, release = Kallsyms.load.__func__, loader.release_compiler_memory  # type: ignore[attr-defined]
    monkeypatch.setattr(Kallsyms, "load", classmethod(
        lambda cls, proc_root="/proc": tables.append(proc_root) or load(cls, proc_root)))
    monkeypatch.setattr(loader, "release_compiler_memory",
                        lambda proc_root: releases.append(proc_root) or release(proc_root))
    collector = EbpfCollector(EbpfConfig(probes=["packetloss"]), "/proc", NoPods())
    assert collector.statuses() == {"packetloss": ""}, collector.statuses()
    assert (tables, releases) == (["/proc"], ["/proc"])  # both at load
    kept = _Kept()
    runner = CollectorRunner(collector, kept, 60.0, 0.0)
    port = _closed_port()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(RELEASE_EVERY + 1):  # as many questions as cycles between page-outs
                sender.sendto(b"x", ("127.0.0.1", port))  # NO_SOCKET (net/ipv4/udp.c)
                runner.collect_now(1.0, time.time_ns())
        assert len(kept.collections) == RELEASE_EVERY + 1
        assert (tables, releases) == (["/proc"], ["/proc"])  # no question paid for either
        sites = _sites(kept.collections[-1])
        assert sum(sites.values()) >= RELEASE_EVERY + 1 and "unknown" not in sites, sites
        runner.start()  # the collector's own cycle: read, then its upkeep pages out again
        deadline = time.monotonic() + 10
        while len(releases) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert releases == ["/proc", "/proc"] and tables == ["/proc"]
    finally:
        runner.stop()
