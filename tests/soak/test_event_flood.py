"""A storm of drops: aggregated in the kernel, records budgeted, every loss counted.

A test pod floods a closed UDP port (each datagram is one skb:kfree_skb NO_SOCKET drop)
while the counting probe (packetloss) and the event pipeline (PACKETLOSS records, default
budgets) are loaded. What must hold: the counter sees every drop; the records that reach
user space stay within the kernel budget (per type, CPU and second); everything else is
counted as dropped with its reason; user space's CPU is recorded (RELIABILITY.md).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.source import EventSource
from otel_netreceiver.k8s.directory import NoPods
from tests.support.pods import kernel_supports_test_pods, pod_pair
from tests.support.soak import record, scaled

pytestmark = [pytest.mark.soak, pytest.mark.root]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drops(collection, uid: str) -> float:
    return sum(p.value for p in collection.points if p.metric.name ==
               "netreceiver.pod.packet.drops" and dict(p.attributes).get("k8s.pod.uid") == uid)


def test_a_drop_storm_is_counted_in_the_kernel_and_budgeted_records_are_accounted():
    reason = kernel_supports_test_pods()
    if reason or not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip(reason or "this kernel has no BTF")
    flood = int(scaled(200_000, 2_000_000))
    with pod_pair(95) as (pod, _):
        counter = EbpfCollector(EbpfConfig(probes=["packetloss"]), "/proc", NoPods())
        events: list[Event] = []
        config = EventsConfig(types=["PACKETLOSS"])
        source = EventSource(config, EbpfConfig(), "/proc", NoPods(), events.append)
        try:
            assert counter.statuses() == {"packetloss": ""}, counter.statuses()
            assert all(not r for r in source.statuses.values()), source.statuses
            source.start()
            before = _drops(counter.collect(), pod.uid)
            cpu0, wall0 = _cpu(), time.monotonic()
            pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,"
                     f"socket.SOCK_DGRAM)\nfor _ in range({flood}): s.sendto(b'x', "
                     "('127.0.0.1', 9))")
            seconds = time.monotonic() - wall0
            time.sleep(1.5)  # the poll thread drains what was submitted
            cpu = _cpu() - cpu0
            counted = _drops(counter.collect(), pod.uid) - before
            dropped = {r: n for (t, r), n in source.drop_counts().items() if t == "PACKETLOSS"}
            delivered = source.delivered.get("PACKETLOSS", 0)
        finally:
            source.close()
            counter.close()
    cpus = os.cpu_count() or 1
    record("drop storm", drops=flood, seconds=round(seconds, 2), counted=counted,
           delivered=delivered, dropped=dropped, agent_cpu_s=round(cpu, 3),
           cpu_per_drop_us=round(cpu / flood * 1e6, 3))
    assert counted == flood  # the per-pod counter: aggregated in the kernel, nothing lost
    budget = config.kernel_budget * cpus * (int(seconds) + 2)
    assert delivered <= min(budget, config.burst + config.rate_limit * (seconds + 2))
    assert dropped.get("rate_limit_kernel", 0) >= flood - budget  # the rest: counted
    assert delivered + sum(dropped.values()) >= flood  # every record accounted for
