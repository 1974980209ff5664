"""Probes sharing a tracepoint as one program: grouping and rendering, without a kernel."""

from __future__ import annotations

import re
from pathlib import Path

from otel_netreceiver.bpf.compose import (
    composite_spec,
    conflicts,
    groups,
    members,
    render_composite,
)
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.tracefs import parse_format

DATA = Path(__file__).parent.parent / "data" / "tracefs"
FORMATS = {("skb", "kfree_skb"): parse_format((DATA / "skb_kfree_skb.format").read_text(),
                                              "kfree_skb")}
OFFSETS = {"OFF_NET_INUM": 8, "OFF_SOCK_NET": 16, "OFF_SOCK_STATE": 18, "OFF_SKB_DEV": 24,
           "OFF_SKB_SK": 32, "OFF_DEV_NET": 40, "TIMING_SAMPLE": 64}


def _names(found: list[tuple]) -> list[list[str]]:
    return [[s.name for s in group] for group in found]


def test_probes_sharing_a_tracepoint_are_grouped_in_configuration_order() -> None:
    defaults = [PROBES[n] for n in ("tcpreset", "packetloss", "tcpretrans", "virtcmdlatency",
                                    "tcptwrcv")]
    assert _names(groups(defaults)) == [["tcpreset"], ["packetloss", "tcptwrcv"],
                                        ["tcpretrans"], ["virtcmdlatency"]]
    # kernellatency joins net_softirq (softirq_exit) and netiftxlat (net_dev_queue)
    per_packet = [PROBES[n] for n in ("net_softirq", "netiftxlat", "kernellatency")]
    assert _names(groups(per_packet)) == [["net_softirq", "netiftxlat", "kernellatency"]]


def test_probes_declaring_the_same_names_are_not_joined() -> None:
    assert conflicts((PROBES["packetloss"], PROBES["tcptwrcv"])) == set()
    # the same latency map from include/podlatency.h: joined, their histograms would merge
    assert "header podlatency.h" in conflicts((PROBES["socketlatency"],
                                               PROBES["kernellatency"]))
    assert "vec_args" in conflicts((PROBES["net_softirq"], PROBES["kernellatency"]))


def test_one_entry_per_tracepoint_calls_every_probes_handler() -> None:
    group = (PROBES["packetloss"], PROBES["tcptwrcv"])
    spec = composite_spec(group)
    assert spec.name == "packetloss+tcptwrcv" and members(spec.name) == ("packetloss",
                                                                        "tcptwrcv")
    assert [(a.category, a.event, a.function) for a in spec.attach] == [
        ("skb", "kfree_skb", "onr_skb_kfree_skb")]
    text = render_composite(group, FORMATS, OFFSETS)
    # one program: the only non-static function is the entry, calling both handlers in order
    assert re.findall(r"^int (\w+)\(", text, re.M) == ["onr_skb_kfree_skb"]
    entry = text[text.index("int onr_skb_kfree_skb("):]
    assert entry.index("on_kfree_skb(args);") < entry.index("on_tw_drop(args);")
    assert "static __always_inline int on_kfree_skb(struct kfree_skb_args *args)" in text
    # the struct once, with every field either probe reads; headers and lost map once
    assert text.count("struct kfree_skb_args {") == 1
    struct = text[text.index("struct kfree_skb_args {"):].split("};")[0]
    for field in ("skbaddr", "location", "rx_sk", "reason"):
        assert f" {field};" in struct
    assert text.count("BPF_PERCPU_ARRAY(lost") == 1 and "#define LOST_SLOTS 2" in text
    # each probe counts its full maps in its own slot of the lost map
    first, second = text.index("#define LOST_SLOT 0"), text.index("#define LOST_SLOT 1")
    assert first < text.index("drops.update") < second < text.index("tw_packets.update")


def test_the_dns_records_join_the_dns_counting_object() -> None:
    """Both socket hooks: the event spec is offered to the counting object (the counting
    text calls its handler where HOSTED_EVENTS_DNS is defined), the header both include
    once; a tracepoint probe's records still need a probe without a finish hook."""
    from otel_netreceiver.bpf.compose import Hosted, hosted_fits
    from otel_netreceiver.bpf.probes import EVENT_PROBES
    from otel_netreceiver.bpf.programs import source
    from otel_netreceiver.config.schema import EventsConfig
    from otel_netreceiver.events.hosting import EventHosting
    from otel_netreceiver.events.source import settings_of

    dns, records = PROBES["dns"], EVENT_PROBES["dns"]
    assert hosted_fits(dns, records)
    assert not hosted_fits(PROBES["packetloss"], records)  # not a socket hook
    hosting = EventHosting(settings_of(EventsConfig(types=["DNS_TIMEOUT"])), 64)
    assert hosting.events_of((dns,)) == (records,)
    assert hosting.events_of((PROBES["packetloss"], PROBES["tcptwrcv"], dns)) == (records,)
    hosted = Hosted((records,), "", {}, lambda spec, formats: source(spec))
    text = render_composite((dns,), FORMATS, OFFSETS, hosted)
    assert "#define HOSTED_EVENTS_DNS 1" in text
    # the kfree_skb entry calls the records' NO_SOCKET handler after the counting one
    entry = text[text.index("int onr_skb_kfree_skb("):]
    assert entry.index("dns_no_socket(args);") < entry.index("dnsev_no_socket(args);")
