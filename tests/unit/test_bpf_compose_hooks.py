"""Socket-hook probes as one program per direction: grouping and rendering, without a kernel."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from otel_netreceiver.bpf.compose import groups
from otel_netreceiver.bpf.compose_hooks import (
    ENTRY,
    hook_conflicts,
    hook_spec,
    is_hook_group,
    join,
    render_hooks,
    spec_of,
    split,
)
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.programs import Attach, render
from otel_netreceiver.bpf.socket_hooks import SocketAttacher
from otel_netreceiver.bpf.tracefs import parse_format
from otel_netreceiver.collectors.ebpf import CountingRender
from otel_netreceiver.config.schema import EbpfConfig

DATA = Path(__file__).parent.parent / "data" / "tracefs"
FORMATS = {("skb", "kfree_skb"): parse_format((DATA / "skb_kfree_skb.format").read_text(),
                                              "kfree_skb")}


def _names(found: list[tuple]) -> list[list[str]]:
    return [[s.name for s in group] for group in found]


def _hooked() -> list:
    return [p for p in PROBES.values() if isinstance(p.finish, SocketAttacher)]


def test_every_socket_hook_probe_joins_one_group_at_the_first_ones_place() -> None:
    specs = [PROBES[n] for n in ("packetloss", "peers", "tcpreset", "dns", "tcptwrcv")]
    assert _names(join(groups(specs))) == [["packetloss", "tcptwrcv"], ["peers", "dns"],
                                           ["tcpreset"]]
    # one socket-hook probe alone joins the probes on its tracepoints (dns_no_socket on
    # skb:kfree_skb): its finish becomes the object's; refused, the rest stay one object
    alone = [PROBES[n] for n in ("packetloss", "tcpreset", "dns", "tcptwrcv")]
    [adopted, reset] = join(groups(alone))
    assert _names([adopted, reset]) == [["packetloss", "tcptwrcv", "dns"], ["tcpreset"]]
    assert spec_of(adopted).finish == PROBES["dns"].finish
    assert [a.function for a in spec_of(adopted).attach] == ["onr_skb_kfree_skb"]
    assert _names(split(adopted)) == [["packetloss", "tcptwrcv"], ["dns"]]
    assert _names(split(reset)) == [["tcpreset"]]
    # nothing on its tracepoints: alone, as it always was
    assert _names(join(groups([PROBES["tcpreset"], PROBES["dns"]]))) == [["tcpreset"], ["dns"]]
    assert is_hook_group((PROBES["dns"], PROBES["peers"]))
    assert not is_hook_group((PROBES["packetloss"], PROBES["tcptwrcv"]))


def test_the_parser_header_is_shared_but_a_shared_tracepoint_or_no_handler_is_not() -> None:
    dns, peers = PROBES["dns"], PROBES["peers"]
    assert hook_conflicts((dns, peers)) == set()
    twice = dataclasses.replace(peers, attach=(Attach("skb", "kfree_skb", "other_drop"),))
    assert hook_conflicts((dns, twice)) == {"tracepoint skb:kfree_skb"}
    bare = dataclasses.replace(peers, finish=SocketAttacher("peers"))
    assert hook_conflicts((dns, bare)) == {"peers: no socket-hook handler"}
    jumper = dataclasses.replace(peers, finish=SocketAttacher("peers", "peer_skb",
                                                             (("peer_next", "peer_more"),)))
    assert hook_conflicts((dns, jumper)) == {
        "more than one socket-hook handler tail-calls (each would end the entry)"}


def test_the_composite_keeps_each_probes_tracepoints_and_attaches_two_entries() -> None:
    spec = hook_spec((PROBES["dns"], PROBES["peers"]))
    assert spec.name == "dns+peers"
    assert [a.function for a in spec.attach] == ["dns_no_socket"]
    # dns's TCP walk tail-calls dns_tcp_next: the composite fills the slot too
    assert spec.finish == SocketAttacher(ENTRY, tail_calls=(("dns_next", "dns_tcp_next"),))
    assert spec.headers == ("sockhook.h", "dnstcp.h")


def test_one_egress_and_one_ingress_program_parse_once_and_call_every_handler() -> None:
    group = (PROBES["dns"], PROBES["peers"])
    renderer = CountingRender(EbpfConfig(probes=["dns", "peers"]), by_cookie=False)
    text = renderer.composite(group, FORMATS, None)
    offsets = {k: v for k, v in {**renderer.built["dns"], **renderer.built["peers"]}.items()
               if k != "LOST_SLOT"}
    assert text == render_hooks(group, FORMATS, offsets)
    # the programs: the two entries and dns's tracepoint program (#ifdef, #else), no
    # per-probe hook program
    programs = re.findall(r"^int (\w+)\(", text, re.M)
    assert set(programs) == {"dns_no_socket", "dns_tcp_next", "onr_sock_egress",
                             "onr_sock_ingress"}
    assert "#define SOCKET_HOOK_COMPOSITE 1" in text
    assert text.count("BPF_PERCPU_ARRAY(skb_pkt_scratch") == 1
    assert text.index("#define SOCKET_HOOK_COMPOSITE") < text.index("#ifdef SOCKET_HOOK_COMPOSITE")
    assert text.count("static __always_inline int skb_pkt_parse(") == 1
    for side, egress in (("egress", 1), ("ingress", 0)):
        entry = text[text.index(f"int onr_sock_{side}("):].split("\n}\n")[0]
        assert entry.count("skb_pkt_parse(") == 1
        assert f"skb_pkt_parse(skb, {egress}, &parsed)" in entry
        # the handlers read the header from the per-CPU slot (values the verifier forgets)
        assert entry.index("memcpy(p, &parsed") < entry.index("dns_skb(skb, p);") \
            < entry.index("peer_skb(skb, p);")
        # dns's tail call (its TCP walk) after every handler: a tail call does not return
        assert entry.index("skb->cb[4] = 0;") < entry.index("dns_skb(skb, p);") \
            < entry.index("peer_skb(skb, p);") < entry.index("dns_next.call(skb, 0);")
    # each probe's maps count their failures in its own slot of the lost map
    assert renderer.built["dns"]["LOST_SLOT"] == 0 and renderer.built["peers"]["LOST_SLOT"] == 1
    assert "#define LOST_SLOTS 2" in text
    first, second = text.index("#define LOST_SLOT 0"), text.index("#define LOST_SLOT 1")
    assert first < text.index("dns_counts.update") < second < text.index("peer_counts.update")


def test_alone_a_probe_makes_its_own_two_programs_from_the_same_handler() -> None:
    renderer = CountingRender(EbpfConfig(probes=["peers"]), by_cookie=False)
    text = renderer(PROBES["peers"], FORMATS, None)
    assert "#define SOCKET_HOOK_COMPOSITE" not in text
    assert text.rstrip().endswith("SOCKET_HOOK(peers, peer_skb)")
    assert text == render(PROBES["peers"], FORMATS, {**renderer.built["peers"]})


def test_every_socket_hook_probe_names_a_handler_its_c_defines() -> None:
    for spec in _hooked():
        handler = spec.finish.handler
        assert f"SOCKET_HOOK({spec.finish.prefix}, {handler})" in render(
            spec, FORMATS, CountingRender(EbpfConfig(probes=[spec.name]), False)._offsets(
                spec, FORMATS, None))
        assert "sockhook.h" in spec.headers


def test_a_lone_socket_hook_probe_is_a_handler_of_the_tracepoints_one_program() -> None:
    [group] = join(groups([PROBES[n] for n in ("packetloss", "tcptwrcv", "dns")]))
    renderer = CountingRender(EbpfConfig(probes=["packetloss", "tcptwrcv", "dns"]), False)
    text = renderer.composite(group, FORMATS, None)
    # on skb:kfree_skb one entry calling the three handlers (dns's inlined, not a program of
    # its own); dns's socket programs and its TCP walk's tail call stay programs
    programs = re.findall(r"^int (\w+)\(", text, re.M)
    assert sorted(programs) == ["dns_tcp_next", "onr_skb_kfree_skb"]
    assert text.rstrip().count("SOCKET_HOOK(dns, dns_skb)") == 1  # dns_egress, dns_ingress
    assert "static __always_inline int dns_no_socket(struct kfree_skb_args *args)" in text
    entry = text[text.index("int onr_skb_kfree_skb("):]
    assert entry.index("on_kfree_skb(args);") < entry.index("on_tw_drop(args);") \
        < entry.index("dns_no_socket(args);")
    assert "#define SOCKET_HOOK_COMPOSITE" not in text
    assert text.count("struct kfree_skb_args {") == 1
    assert [renderer.built[n]["LOST_SLOT"] for n in ("packetloss", "tcptwrcv", "dns")] == [0, 1,
                                                                                           2]


class AnyOffsets:
    """A BTF with every field at offset 8: rendering only writes the numbers down."""

    def offset(self, struct_name: str, path: str) -> int:
        return 8


def test_the_dns_records_are_handled_in_the_socket_hook_composite() -> None:
    """dns and peers one program per direction, the records' handler called by dns's (no
    program of their own); the loader's second try (``bare``) is the same text without."""
    from otel_netreceiver.bpf.probes import EVENT_PROBES
    from otel_netreceiver.config.schema import EventsConfig
    from otel_netreceiver.events.hosting import EventHosting
    from otel_netreceiver.events.source import settings_of

    group = (PROBES["dns"], PROBES["peers"])
    hosting = EventHosting(settings_of(EventsConfig(types=["DNS_TIMEOUT"])), 64)
    assert hosting.events_of(group) == (EVENT_PROBES["dns"],)
    renderer = CountingRender(EbpfConfig(probes=["dns", "peers"]), False, hosting)
    btf = AnyOffsets()
    text = renderer.composite(group, FORMATS, btf)  # type: ignore[arg-type]
    assert renderer.hosted == {"dns+peers": ("dns",)}
    assert "#define HOSTED_EVENTS_DNS 1" in text and "#define SOCKET_HOOK_COMPOSITE 1" in text
    # the struct, the records' table and their perf buffer once
    assert text.count("struct kfree_skb_args {") == 1
    assert text.count("BPF_HASH(ev_pending") == 1 and text.count("BPF_PERF_OUTPUT(events)") == 1
    # the entries as without records: dns_skb calls the records' handler before its counts
    entry = text[text.index("int onr_sock_ingress("):].split("\n}\n")[0]
    assert entry.index("dns_skb(skb, p);") < entry.index("peer_skb(skb, p);")
    handler = text[text.index("static __always_inline int dns_skb("):].split("\n}\n")[0]
    assert handler.index("dnsev_skb(skb, p->egress);") < handler.index("dns_counts_skb(skb, p)")
    # the records' NO_SOCKET function is no program (dns_no_socket calls dnsev_gone)
    assert not re.search(r"^int dnsev_no_socket\(", text, re.M)
    assert text.index("int dns_no_socket(") < text.index("dnsev_gone(args);")
    assert hook_spec(group).attach == PROBES["dns"].attach
    bare = renderer.bare(group)
    assert bare is not None
    plain = bare(group, FORMATS, btf, False)  # type: ignore[arg-type]
    assert "#define HOSTED_EVENTS_DNS" not in plain and "ev_pending" not in plain
    assert renderer.hosted == {} and renderer.bare(group) is None
    assert plain == render_hooks(group, FORMATS, {k: v for k, v in {
        **renderer.built["dns"], **renderer.built["peers"]}.items() if k != "LOST_SLOT"})
