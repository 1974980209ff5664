"""Probes sharing a tracepoint run as one program, and fall back to one each if it fails;
with events on, the event handler joins the counting object on its tracepoint.

Real namespaces and drops (UDP to a closed port: NO_SOCKET on skb:kfree_skb), the agent's
own collector; the kernel's list of attached programs (bpftool-free: the collector's own
objects and their functions) shows one program where there were two.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.source import EventSource, settings_of
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.support.pods import Pod, kernel_supports_test_pods, pod_pair

pytestmark = pytest.mark.root
REASON = kernel_supports_test_pods() or (
    "" if Path("/sys/kernel/btf/vmlinux").exists() else "this kernel has no BTF")
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SHARED = ["packetloss", "tcptwrcv"]  # both on skb:kfree_skb


def _drops(collection: Collection, pod: Pod) -> float:
    return sum(p.value for p in collection.points
               if p.metric.name == "netreceiver.pod.packet.drops"
               and dict(p.attributes).get("k8s.pod.uid") == pod.uid
               and dict(p.attributes).get("drop.reason") == "NO_SOCKET")


def _flood(pod: Pod, n: int) -> None:
    pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)"
             f"\nfor _ in range({n}): s.sendto(b'x', ('127.0.0.1', 9))")


def _counts_and_lost(collector: EbpfCollector, pod: Pod) -> tuple[float, dict[str, float]]:
    before = collector.collect()
    _flood(pod, 30)
    after = collector.collect()
    assert not after.errors, after.errors
    lost = {dict(p.attributes)["probe"]: p.value for p in after.points
            if p.metric.name == "netreceiver.bpf.lost"}
    return _drops(after, pod) - _drops(before, pod), lost


def test_probes_on_one_tracepoint_are_one_program_and_each_still_counts() -> None:
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=SHARED), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(SHARED, "")
            [(name, (spec, bpf))] = collector.objects().items()
            assert name == "packetloss+tcptwrcv"
            assert [a.function for a in spec.attach] == ["onr_skb_kfree_skb"]
            assert list(bpf.tracepoint_fds) == [b"skb:kfree_skb"]  # one attachment
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30
            assert lost == {"packetloss": 0, "tcptwrcv": 0}  # a point per probe, not per object
        finally:
            collector.close()


def test_a_composite_the_compiler_refuses_falls_back_to_one_program_each(monkeypatch) -> None:
    from otel_netreceiver.collectors import ebpf

    monkeypatch.setattr(ebpf, "render_composite",
                        lambda group, *rest: "#error composite refused by the test\n")
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=SHARED), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(SHARED, "")  # both loaded, alone
            assert sorted(collector.objects()) == SHARED
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0}
        finally:
            collector.close()


def test_dns_joins_the_drop_program_and_a_refusal_leaves_the_rest_one_program(
        monkeypatch) -> None:
    """dns's NO_SOCKET handler in the skb:kfree_skb program (bpf/compose_hooks.py adopt); the
    composite refused, packetloss and tcptwrcv stay one program and dns loads alone."""
    from otel_netreceiver.collectors import ebpf

    probes = [*SHARED, "dns"]
    real = ebpf.render_composite
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=probes), "/proc", NoPods())
        try:
            [(name, (_, bpf))] = collector.objects().items()
            assert name == "packetloss+tcptwrcv+dns" and list(bpf.tracepoint_fds) == [
                b"skb:kfree_skb"]
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0, "dns": 0}
        finally:
            collector.close()
        monkeypatch.setattr(ebpf, "render_composite", lambda group, *rest: (
            "#error refused by the test\n" if any(s.name == "dns" for s in group)
            else real(group, *rest)))
        collector = EbpfCollector(EbpfConfig(probes=probes), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(probes, "")
            assert sorted(collector.objects()) == ["dns", "packetloss+tcptwrcv"]
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0, "dns": 0}
        finally:
            collector.close()


def _hosted(events: list[Event], budget: int,
            probes: list[str]) -> tuple[EventHosting, EbpfCollector, EventSource]:
    """The counting collector and the event source as the agent builds them (registry)."""
    config = EventsConfig(types=["PACKETLOSS"], kernel_budget=budget, rate_limit=1e6,
                          burst=10**6)
    hosting = EventHosting(settings_of(config), EbpfConfig().timing_sample)
    collector = EbpfCollector(EbpfConfig(probes=probes), "/proc", NoPods(), hosting=hosting)
    source = EventSource(config, EbpfConfig(), "/proc", NoPods(), events.append,
                         hosting=hosting)
    source.start()
    return hosting, collector, source


def _records(events: list[Event], pod: Pod, n: int) -> list[Event]:
    inode = int(os.readlink(f"/proc/{pod.holder.pid}/ns/net")[5:-1]) if pod.holder else 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(
            [e for e in events if e.netns == inode]) < n:
        time.sleep(0.05)
    return [e for e in events if e.netns == inode and e.reason == "NO_SOCKET"]


def test_counters_and_event_records_of_a_tracepoint_are_one_program() -> None:
    events: list[Event] = []
    with pod_pair(7) as (a, _b):
        hosting, collector, source = _hosted(events, 10**6, SHARED)
        try:
            [(name, (_spec, bpf))] = collector.objects().items()
            assert name == "packetloss+tcptwrcv" and source.statuses == {"packetloss": ""}
            assert source._loaded["packetloss"] is bpf  # no event object of its own
            assert list(bpf.tracepoint_fds) == [b"skb:kfree_skb"]  # one attachment
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0}
            records = _records(events, a, 30)
            assert len(records) == 30
            assert records[0].destination.port == 9 and records[0].location == "__udp4_lib_rcv"
            collector.close()  # either may close first: the source still holds the object
            assert hosting.owns(bpf) and list(bpf.tracepoint_fds) == [b"skb:kfree_skb"]
        finally:
            collector.close()
            source.close()
    assert not hosting.owns(bpf) and not bpf.tracepoint_fds  # the last holder unloaded it


def test_a_hosted_flood_above_the_kernel_budget_passes_exactly_the_budget() -> None:
    # one CPU, one burst well inside a second: the budget window (events.h ev_reserve, its
    # clock read once per tick) lets exactly the budget through, the rest is counted
    events: list[Event] = []
    with pod_pair(7) as (a, _b):
        _, collector, source = _hosted(events, 10, ["packetloss"])
        try:
            assert list(collector.objects()) == ["packetloss"]  # counting + events, one object
            before = source.drop_counts().get(("PACKETLOSS", "rate_limit_kernel"), 0)
            a.exec("taskset", "-c", "0", "python3", "-c", "import socket\ns=socket.socket("
                   "socket.AF_INET,socket.SOCK_DGRAM)\nfor _ in range(300): s.sendto(b'x', "
                   "('127.0.0.1', 9))")
            time.sleep(0.5)
            records = _records(events, a, 10)
            suppressed = source.drop_counts()[("PACKETLOSS", "rate_limit_kernel")] - before
        finally:
            collector.close()
            source.close()
    assert len(records) <= 10  # other drops on CPU 0 in the same second share the budget
    assert len(records) + suppressed >= 300 and suppressed >= 290


def test_a_refused_combined_object_leaves_counters_and_records_in_their_own(
        monkeypatch) -> None:
    from otel_netreceiver.collectors import ebpf

    real = ebpf.render_composite
    monkeypatch.setattr(ebpf, "render_composite", lambda group, formats, offsets, hosted=None,
                        tp_btf=False: "#error refused by the test\n" if hosted else
                        real(group, formats, offsets, None, tp_btf))
    events: list[Event] = []
    with pod_pair(7) as (a, _b):
        hosting, collector, source = _hosted(events, 10**6, SHARED)
        try:
            assert list(collector.objects()) == SHARED  # the fallback: each probe alone
            assert source.statuses == {"packetloss": ""}
            assert not any(hosting.owns(b) for _, b in collector.objects().values())
            assert all(source._loaded["packetloss"] is not b
                       for _, b in collector.objects().values())
            drops, _lost = _counts_and_lost(collector, a)
            assert drops == 30 and len(_records(events, a, 30)) == 30
        finally:
            collector.close()
            source.close()


def _agent_yaml(endpoint: str, probes: str, types: str) -> str:
    return f"""
interval: 1s
jitter: 0
collectors:
  ena: {{enabled: false}}
  netdev: {{enabled: false}}
  podnet: {{enabled: false}}
  nodenet: {{enabled: false}}
  ebpf: {{probes: {probes}}}
  events: {{types: {types}, schedule_delay: 200ms}}
exporters:
  otlp: {{endpoint: "{endpoint}", protocol: http/protobuf}}
"""


def test_the_agent_shares_the_object_and_a_reload_rebuilds_both_sides() -> None:
    import io

    from otel_netreceiver.cloud.imds import InstanceMetadata
    from otel_netreceiver.config.loader import load_text
    from otel_netreceiver.runtime.agent import Agent
    from tests.support.otlp_sink import OtlpHttpSink, log_records

    sink = OtlpHttpSink()
    agent = Agent(load_text(_agent_yaml(sink.endpoint, "[packetloss, tcptwrcv]", "[PACKETLOSS]"),
                            "a.yaml", {}), {}, stream=io.StringIO(), metadata=InstanceMetadata())
    agent.start()
    try:
        with pod_pair(7) as (a, _b):
            ebpf, events = (agent.runners[n].collector for n in ("ebpf", "events"))
            [(_, old)] = ebpf.objects().values()
            assert events._source._loaded["packetloss"] is old  # one program, two owners
            agent.apply(load_text(_agent_yaml(sink.endpoint, "[packetloss]", "[PACKETLOSS]"),
                                  "a.yaml", {}))
            assert not old.tracepoint_fds  # both let go: the old object is unloaded
            ebpf, events = (agent.runners[n].collector for n in ("ebpf", "events"))
            [(name, (_, new))] = ebpf.objects().items()
            assert name == "packetloss" and events._source._loaded["packetloss"] is new
            drops, _lost = _counts_and_lost(ebpf, a)
            assert drops == 30

            def records() -> int:
                return sum(1 for req in sink.log_requests for r in log_records(req)
                           if r.event_name == "PACKETLOSS"
                           and any(kv.value.string_value == a.uid for kv in r.attributes))
            deadline = time.monotonic() + 10
            while records() < 30 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert records() == 30  # the new shared object's records reach OTLP
    finally:
        agent.stop(flush=False)
        sink.close()
