"""Event records without a kernel: decoding, naming, rendering, rate limits, batching, OTLP."""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otel_netreceiver.bpf.tracefs import TracepointFormat, parse_format
from otel_netreceiver.events.model import (
    EVENT_NAMES,
    RECORD,
    DecodeError,
    Endpoint,
    Names,
    decode_record,
    parse_sockaddr,
    summary,
    to_event,
)
from otel_netreceiver.events.otlp_logs import encode_logs
from otel_netreceiver.events.programs import (
    EVENT_PROBES,
    EventSettings,
    probes_for,
    render_events,
)
from otel_netreceiver.events.watch import Filter, format_event
from otel_netreceiver.model import attrs

DATA = Path(__file__).parent.parent / "data" / "tracefs"
OFFSETS = {name: 8 * i for i, name in enumerate(
    ("OFF_NET_INUM", "OFF_SOCK_NET", "OFF_SOCK_STATE", "OFF_SKB_DEV", "OFF_SKB_SK",
     "OFF_DEV_NET", "OFF_SKC_FAMILY", "OFF_SKC_NUM", "OFF_SKC_DPORT", "OFF_SKC_DADDR",
     "OFF_SKC_RCV_SADDR", "OFF_SKC_V6_DADDR", "OFF_SKC_V6_RCV_SADDR", "OFF_SKB_HEAD",
     "OFF_SKB_NH", "OFF_SKB_TH"), start=1)} | {"TIMING_SAMPLE": 64}
SETTINGS = EventSettings(("TCP_SEND_RST", "PACKETLOSS"), 100, 5_000_000, 7_000_000, False)


def _fmt(name: str) -> TracepointFormat:
    return parse_format((DATA / f"{name}.format").read_text(), name)


def _sockaddr(address: str, port: int) -> bytes:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        raw = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + ip.packed
    else:
        raw = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", port) + b"\0" * 4 + ip.packed
    return raw.ljust(28, b"\0")


def _record(type_name: str, **values: object) -> bytes:
    v = {"ts": 1_000, "location": 0, "value": 0, "netns": 4026532000, "reason": 0, "state": 0,
         "stack": -1, "cpu": 1, "protocol": 0, "l4": 0, "saddr": b"", "daddr": b"",
         "ifname": b"", **values}
    return RECORD.pack(v["ts"], v["location"], v["value"], EVENT_NAMES.index(type_name),
                       v["netns"], v["reason"], v["state"], v["stack"], v["cpu"], v["protocol"],
                       v["l4"], 0, v["saddr"], v["daddr"], v["ifname"])


POD = attrs({"netns.inode": 4026532000, "netns.kind": "pod", "k8s.pod.uid": "u-1",
             "k8s.pod.name": "web-1", "k8s.namespace.name": "shop"})
NAMES = Names({("skb", "kfree_skb", "reason"): {3: "NO_SOCKET"},
               ("tcp", "tcp_send_reset", "reason"): {2: "NO_SOCKET"}},
              lambda a: {0xffffffff81000010: "__udp4_lib_rcv"}.get(a, "unknown"),
              lambda inode: POD if inode == 4026532000 else attrs({"netns.kind": "unknown"}))


def test_a_reset_record_decodes_with_addresses_ports_reason_and_pod() -> None:
    data = _record("TCP_SEND_RST", reason=2, state=255, saddr=_sockaddr("10.251.8.2", 1),
                   daddr=_sockaddr("10.251.8.2", 45678))
    event = to_event(decode_record(data), NAMES, clock_offset_ns=5_000)
    assert event.name == "TCP_SEND_RST" and event.time_unix_nano == 6_000
    assert (event.severity_number, event.severity_text) == (9, "INFO")
    assert event.source == Endpoint("10.251.8.2", 1)
    assert event.destination == Endpoint("10.251.8.2", 45678)
    assert event.reason == "NO_SOCKET" and dict(event.attributes)["tcp.state"] == "no_socket"
    assert event.attribute("k8s.pod.name") == "web-1"
    assert summary(event) == ("TCP_SEND_RST 10.251.8.2:1 -> 10.251.8.2:45678 state=no_socket "
                              "reason=NO_SOCKET")


def test_drop_records_name_reason_and_location_and_ipv6() -> None:
    data = _record("PACKETLOSS", reason=3, location=0xffffffff81000010, protocol=0x86DD, l4=17,
                   saddr=_sockaddr("fd00::1", 5353), daddr=_sockaddr("fd00::2", 53))
    event = to_event(decode_record(data), NAMES, 0)
    assert (event.reason, event.location) == ("NO_SOCKET", "__udp4_lib_rcv")
    assert event.destination == Endpoint("fd00::2", 53) and event.severity_text == "WARN"
    own = dict(event.attributes)
    assert (own["network.protocol"], own["network.transport"]) == ("ipv6", "udp")
    assert "[fd00::1]:5353 -> [fd00::2]:53" in summary(event)
    unnamed = to_event(decode_record(_record("PACKETLOSS", location=0x1234)), NAMES, 0)
    assert unnamed.location == "unknown" and unnamed.source is None  # family 0: no address


def test_slow_softirq_records_carry_vector_phase_and_latency() -> None:
    event = to_event(decode_record(_record("NET_SOFTIRQ_SLOW", reason=3, state=1,
                                           value=12_500_000, netns=0)), NAMES, 0)
    own = dict(event.attributes)
    assert (own["softirq.vector"], own["softirq.phase"], own["latency.ns"]) == (
        "NET_RX", "execute", "12500000")
    assert summary(event).endswith("latency=12.500ms")
    tx = to_event(decode_record(_record("NETIF_TXLAT_SLOW", ifname=b"eth0\0junk")), NAMES, 0)
    assert dict(tx.attributes)["network.interface.name"] == "eth0"


def test_bad_records_are_refused_with_the_problem() -> None:
    with pytest.raises(DecodeError, match="of 12 bytes, expected 128"):
        decode_record(b"\0" * 12)
    with pytest.raises(DecodeError, match="unknown type 99"):
        decode_record(RECORD.pack(0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, b"", b"", b""))
    assert parse_sockaddr(b"\0" * 28) is None


def test_rendering_puts_settings_in_defines_and_takes_addresses_from_the_format() -> None:
    formats = {("tcp", "tcp_send_reset"): _fmt("tcp_tcp_send_reset"),
               ("tcp", "tcp_receive_reset"): _fmt("tcp_tcp_receive_reset")}
    text = render_events(EVENT_PROBES["tcpreset"], formats, OFFSETS, SETTINGS)
    for define in ("#define EV_BUDGET 100", "#define EV_ON_TCP_SEND_RST 1",
                   "#define EV_ON_TCP_RECEIVE_RST 0", "#define EV_STACKS 0",
                   "#define EV_TCP_SEND_RST 0", "#define EV_SOFTIRQ_NS 5000000ULL"):
        assert define in text
    assert "__builtin_memcpy(e->saddr, args->saddr, 28);" in text  # 6.18: sockaddrs
    assert "ev_inet(e, args->family, args->sport" in text  # receive_reset: ports and addresses
    assert "struct nr_event {" in text and "EVENTS_H" not in text
    # an older tcp_send_reset without address fields: the socket is read at BTF offsets
    old = formats[("tcp", "tcp_send_reset")]
    bare = TracepointFormat(old.name, tuple(f for f in old.fields
                                            if f.name in ("skbaddr", "skaddr", "state")), {})
    older = render_events(EVENT_PROBES["tcpreset"], {**formats, ("tcp", "tcp_send_reset"): bare},
                          OFFSETS, SETTINGS)
    assert "ev_from_sock(e, args->skaddr);" in older and "0xFFFFFFFE" in older
    assert f"#define OFF_SKC_DADDR {OFFSETS['OFF_SKC_DADDR']}" in older


def test_every_event_program_renders_from_recorded_formats() -> None:
    formats = {("skb", "kfree_skb"): _fmt("skb_kfree_skb"),
               ("tcp", "tcp_retransmit_skb"): _fmt("tcp_tcp_retransmit_skb"),
               ("net", "net_dev_queue"): _fmt("net_net_dev_queue"),
               ("net", "net_dev_xmit"): _fmt("net_net_dev_xmit")}
    stacks = EventSettings(tuple(EVENT_NAMES), 7, 1, 2, True)
    for probe in ("packetloss", "tcpretrans", "netiftxlat", "net_softirq"):
        text = render_events(EVENT_PROBES[probe], formats, OFFSETS, stacks)
        assert "#define EV_STACKS 1" in text and "#define EV_BUDGET 7" in text
        assert "#define TIMING_SAMPLE 64" in text
        assert ("% TIMING_SAMPLE" in text) == (probe in ("netiftxlat", "net_softirq"))
    assert probes_for(("PACKETLOSS", "TCP_RECEIVE_RST", "TCP_SEND_RST")) == ("tcpreset",
                                                                             "packetloss")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _event(name: str = "PACKETLOSS"):  # type: ignore[no-untyped-def]
    return to_event(decode_record(_record(name)), NAMES, 0)


def test_log_records_decode_with_the_generated_classes() -> None:
    reset = to_event(decode_record(_record("TCP_SEND_RST", reason=2, state=255,
                                           saddr=_sockaddr("10.0.0.1", 80),
                                           daddr=_sockaddr("10.0.0.2", 40000))), NAMES, 0)
    body = encode_logs([reset, _event()], {"service.name": "otel-netreceiver"})
    request = ExportLogsServiceRequest.FromString(body)
    rl = request.resource_logs[0]
    assert {kv.key: kv.value.string_value for kv in rl.resource.attributes} == {
        "service.name": "otel-netreceiver"}
    first, second = rl.scope_logs[0].log_records
    a = {kv.key: kv.value for kv in first.attributes}
    assert a["event.name"].string_value == "TCP_SEND_RST" == first.event_name
    assert a["k8s.pod.name"].string_value == "web-1"
    assert (a["source.address"].string_value, a["destination.port"].int_value) == (
        "10.0.0.1", 40000)
    assert a["reason"].string_value == "NO_SOCKET" and first.severity_number == 9
    assert first.body.string_value.startswith("TCP_SEND_RST 10.0.0.1:80")
    assert second.severity_text == "WARN" and second.event_name == "PACKETLOSS"


def test_watch_filter_and_lines() -> None:
    event = _event("TCP_SEND_RST")
    assert Filter(("TCP_SEND_RST",), "shop", "web-1").matches(event)
    assert Filter(pod="u-1").matches(event)  # the UID works off Kubernetes
    assert not Filter(("PACKETLOSS",)).matches(event)
    assert not Filter(namespace="other").matches(event)
    assert not Filter(pod="web-2").matches(event)
    line = format_event(event, "text")
    assert " pod=shop/web-1 TCP_SEND_RST" in line and line.startswith("1970-01-01T00:00:00")
    assert '"event.name": "TCP_SEND_RST"' in format_event(event, "json")




def test_a_bad_event_setting_is_refused_naming_file_line_and_key() -> None:
    from otel_netreceiver.config.loader import ConfigError, load_text

    with pytest.raises(ConfigError, match=r"e\.yaml:4: collectors\.events\.types.*TCP_RST"):
        load_text("collectors:\n  events:\n    types:\n      - TCP_RST\n", "e.yaml")
    with pytest.raises(ConfigError, match=r"collectors\.events\.softirq_threshold"):
        load_text("collectors:\n  events:\n    softirq_threshold: soon\n", "e.yaml")
    loaded = load_text("collectors:\n  events:\n    txlat_threshold: 2ms\n"
                       "    types: [TCP_RETRANS]\n", "e.yaml")
    assert loaded.config.collectors.events.txlat_threshold == 0.002
    assert loaded.config.collectors.events.types == ["TCP_RETRANS"]


def test_pod_labels_walk_proc_at_most_once_a_second_and_pick_up_late_names(tmp_path) -> None:
    """A real resolver over a proc tree written here (namespace links and cgroups)."""
    from otel_netreceiver.events.source import PodLabels
    from otel_netreceiver.k8s.directory import PodMeta
    from otel_netreceiver.netns.resolver import NetnsResolver

    uid = "0e2c3d4e-0000-1111-2222-333344445555"
    clock, names = Clock(), {}
    directory = type("Directory", (), {"get": lambda self, u: names.get(u)})()
    resolver = NetnsResolver(str(tmp_path), directory, max_age=60.0, clock=clock)
    labels = PodLabels(resolver, clock)
    assert dict(labels(0)) == {"netns.kind": "unknown"} and resolver.walks == 0
    assert dict(labels(7))["netns.kind"] == "unknown" and resolver.walks == 1
    (tmp_path / "70" / "ns").mkdir(parents=True)
    (tmp_path / "70" / "ns" / "net").symlink_to("net:[7]")
    (tmp_path / "70" / "cgroup").write_text(f"0::/kubepods/pod{uid}/" + "c" * 64 + "\n")
    assert dict(labels(7))["netns.kind"] == "unknown" and resolver.walks == 1  # not yet
    clock.now += 1.0
    assert dict(labels(7))["k8s.pod.uid"] == uid and resolver.walks == 2
    names[uid] = PodMeta(uid, "web-7", "shop")  # the Kubernetes watch names it later
    assert dict(labels(7))["k8s.pod.name"] == "web-7" and resolver.walks == 2  # same walk


def test_the_poll_threads_accounting_without_a_kernel() -> None:
    from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
    from otel_netreceiver.k8s.directory import NoPods

    got: list = []
    from otel_netreceiver.events.source import EventSource

    source = EventSource(EventsConfig(rate_limit=0.001, burst=2), EbpfConfig(use_bcc=False),
                         "/proc", NoPods(), got.append)
    assert source.loaded == () and all("bcc disabled" in r for r in source.statuses.values())
    source._pending = [("tcpreset", _record("TCP_SEND_RST", netns=0)) for _ in range(5)]
    source._pending.append(("tcpreset", b"short"))
    source._drain()
    assert [e.name for e in got] == ["TCP_SEND_RST"] * 2
    assert source.delivered == {"TCP_SEND_RST": 2}
    assert source.drop_counts() == {("TCP_SEND_RST", "rate_limit_user"): 3,
                                    ("unknown", "decode_failed"): 1}
    source.close()
