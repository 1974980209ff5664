"""eBPF probe building blocks that need no kernel: format parsing, rendering, map readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.probes.tcpreset import reset_points
from otel_netreceiver.bpf.programs import render
from otel_netreceiver.bpf.readers import BOUNDS, FIRST_SLOT, histogram
from otel_netreceiver.bpf.tracefs import FormatError, parse_format, render_struct
from otel_netreceiver.model import attrs

DATA = Path(__file__).parent.parent / "data" / "tracefs"


def _fmt(name: str):  # type: ignore[no-untyped-def]
    return parse_format((DATA / f"{name}.format").read_text(), name)


def test_drop_reason_names_come_from_the_running_kernels_format() -> None:
    fmt = _fmt("skb_kfree_skb")
    reasons = fmt.symbols["reason"]
    assert reasons[2] == "NOT_SPECIFIED" and reasons[3] == "NO_SOCKET"
    assert len(reasons) > 100  # 6.18 has 127; a hard-coded 6.1 table would have ~70
    reason = fmt.field("reason")
    assert (reason.offset, reason.size, reason.decl) == (36, 4, "enum skb_drop_reason reason")


def test_rendered_struct_places_fields_at_kernel_offsets() -> None:
    text = render_struct(_fmt("skb_kfree_skb"), "args", ("skbaddr", "reason", "rx_sk"))
    assert text.splitlines() == ["struct args {", "    u8 __pad_0[8];", "    u64 skbaddr;",
                                 "    u8 __pad_16[8];", "    u64 rx_sk;", "    u8 __pad_32[4];",
                                 "    u32 reason;", "};"]
    # __data_loc is a u32 (len << 16 | offset), not an array
    assert "    u32 name;" in render_struct(_fmt("net_net_dev_queue"), "q", ("name",))
    send = render_struct(_fmt("tcp_tcp_send_reset"), "s", ("skaddr", "saddr"))
    assert "    u8 saddr[28];" in send  # 6.18 passes sockaddrs, not ports


def test_a_field_this_kernel_lacks_is_named_in_the_error() -> None:
    with pytest.raises(FormatError, match=r"tcp:tcp_receive_reset.*no field 'state'"):
        render_struct(parse_format((DATA / "tcp_tcp_receive_reset.format").read_text(),
                                   "tcp:tcp_receive_reset"), "r", ("state",))
    with pytest.raises(FormatError, match="no 'field:' lines"):
        parse_format("name: x\n", "x:y")


def test_program_rendering_uses_offsets_and_optional_reason() -> None:
    formats = {("tcp", "tcp_send_reset"): _fmt("tcp_tcp_send_reset"),
               ("tcp", "tcp_receive_reset"): _fmt("tcp_tcp_receive_reset")}
    text = render(PROBES["tcpreset"], formats, {"OFF_NET_INUM": 176, "OFF_SOCK_NET": 48,
                                                "OFF_SOCK_STATE": 18, "OFF_SKB_DEV": 16,
                                                "OFF_SKB_SK": 24, "OFF_DEV_NET": 264})
    assert "#define OFF_NET_INUM 176" in text
    assert "key.reason = args->reason;" in text  # the 6.18 tracepoint has a reason
    old = _fmt("tcp_tcp_send_reset")
    older = type(old)(old.name, tuple(f for f in old.fields if f.name != "reason"), {})
    assert "0xFFFFFFFE" in render(PROBES["tcpreset"], {**formats, ("tcp", "tcp_send_reset"):
                                                        older}, {})


def test_log2_slots_become_second_buckets_and_fold_the_edges() -> None:
    h = histogram({1: 2, FIRST_SLOT: 3, FIRST_SLOT + 3: 4, 60: 1}, sum_ns=5_000_000)
    assert h.bounds == BOUNDS and BOUNDS[0] == pytest.approx(1.024e-6)
    assert h.bucket_counts[0] == 5  # slots below 1 µs fold into the first bucket
    assert h.bucket_counts[3] == 4
    assert h.bucket_counts[-1] == 1  # beyond 17 s: the overflow bucket
    assert (h.count, h.sum) == (10, 0.005)


def test_sampled_histograms_scale_counts_and_sum_by_the_sample() -> None:
    """One event in 64 timed: each timed one stands for 64, the mean stays the timed mean."""
    h = histogram({FIRST_SLOT: 3, FIRST_SLOT + 2: 1}, sum_ns=8_000, sample=64)
    assert h.bucket_counts[0] == 192 and h.bucket_counts[2] == 64
    assert (h.count, h.sum) == (256, pytest.approx(64 * 8e-6))
    with pytest.raises(ValueError, match="sample must be >= 1"):
        histogram({FIRST_SLOT: 1}, 1, sample=0)


@pytest.mark.parametrize("probe", ["net_softirq", "netiftxlat"])
def test_per_packet_probes_need_their_timing_sample(probe: str) -> None:
    formats = {("net", "net_dev_queue"): _fmt("net_net_dev_queue"),
               ("net", "net_dev_xmit"): _fmt("net_net_dev_xmit")}
    with pytest.raises(ValueError, match="TIMING_SAMPLE >= 1"):
        render(PROBES[probe], formats, {})
    text = render(PROBES[probe], formats, {"TIMING_SAMPLE": 16})
    assert "#define TIMING_SAMPLE 16" in text and "bpf_get_prandom_u32()" in text


def test_reset_rows_are_named_with_states_and_reasons() -> None:
    points = reset_points([(7, 0, 255, 1, 4), (7, 1, 2, 0xFFFFFFFF, 1)], {1: "NO_SOCKET"},
                          lambda inode: attrs({"netns.inode": inode}))
    by = {tuple(sorted(dict(p.attributes).items())): p.value for p in points}
    assert by[(("netns.inode", "7"), ("tcp.reset.direction", "sent"),
               ("tcp.reset.reason", "no_socket"), ("tcp.state", "no_socket"))] == 4
    assert by[(("netns.inode", "7"), ("tcp.reset.direction", "received"),
               ("tcp.reset.reason", "none"), ("tcp.state", "syn_sent"))] == 1


class _Key:
    def __init__(self, netns: int, reason: int) -> None:
        self.netns, self.reason = netns, reason


class _Value:
    def __init__(self, value: int) -> None:
        self.value = value


def test_map_entries_of_dead_namespaces_are_deleted_and_unknown_ones_kept(tmp_path) -> None:
    """Keyed by inode (a kernel without NS_GET_ID): a proc tree written here has namespace 11."""
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.k8s.directory import NoPods
    from otel_netreceiver.netns.bpfkeys import KeyJoin
    from otel_netreceiver.netns.resolver import NetnsResolver

    (tmp_path / "5" / "ns").mkdir(parents=True)
    (tmp_path / "5" / "ns" / "net").symlink_to("net:[11]")
    resolver = NetnsResolver(str(tmp_path), NoPods(), max_age=60.0)
    assert not resolver.has_cookies
    live, dead, unknown = _Key(11, 3), _Key(99, 3), _Key(0, 2)
    table = {live: _Value(5), dead: _Value(7), unknown: _Value(1)}
    join = KeyJoin(resolver, by_cookie=False)
    maps = ProbeMaps({b"drops": table}, join, {}, str, None, {})
    rows = maps.netns_items("drops", ("netns", "reason"))
    assert sorted(rows) == [(0, 2, 1), (11, 3, 5)]
    assert set(table) == {live, unknown}  # the dead namespace's entry is gone from the map
    assert resolver.walks == 1  # walked for this cycle: 99 is dead without a second walk
    assert dict(join.labels(11))["netns.inode"] == "11"
    assert dict(join.labels(0)) == {"netns.kind": "unknown"}


def test_retransmissions_per_peer_need_the_endpoint_fields_and_name_the_peer():
    from otel_netreceiver.bpf.probes.tcpretrans import (
        peer_address,
        retrans_peer_limit,
        retrans_peer_points,
    )

    fmt = parse_format((DATA / "tcp_tcp_retransmit_skb.format").read_text(), "retransmit")
    assert retrans_peer_limit(fmt, 500) == 500 and retrans_peer_limit(fmt, 0) == 0
    old = parse_format("name: tcp_retransmit_skb\nID: 1\nformat:\n\tfield:const void * "
                       "skaddr;\toffset:8;\tsize:8;\tsigned:0;\n\nprint fmt: \"\"\n", "old")
    assert retrans_peer_limit(old, 500) == 0  # a kernel without sport/dport/daddr fields
    assert peer_address(2, bytes([10, 251, 7, 1]) + bytes(12)) == "10.251.7.1"
    mapped = bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 9])
    assert peer_address(10, mapped) == "192.0.2.9"
    assert peer_address(10, bytes(15) + b"\x01") == "::1"
    pod = attrs({"k8s.pod.uid": "u", "netns.kind": "pod"})
    points = retrans_peer_points([(7, 2, 443, bytes([10, 0, 0, 1]) + bytes(12), 3),
                                  (7, 2, 443, bytes([10, 0, 0, 1]) + bytes(12), 2)],
                                 lambda inode: pod)
    [point] = points
    assert point.value == 5 and dict(point.attributes)["network.peer.port"] == "443"
    rendered = render(PROBES["tcpretrans"], {("tcp", "tcp_retransmit_skb"): fmt},
                      {"RETRANS_PEERS": 64})
    assert "#define RETRANS_PEERS 64" in rendered and "daddr_v6" in rendered
