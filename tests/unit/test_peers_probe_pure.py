"""The peers probe's pure parts: zone numbers kept across tables, rows → points, rendering."""

from __future__ import annotations

from otel_netreceiver.bpf.probes import UNITS
from otel_netreceiver.bpf.probes.peers.reader import ZoneNumbers, peer_points
from otel_netreceiver.bpf.probes.peers.spec import text
from otel_netreceiver.bpf.programs import source
from otel_netreceiver.peers.classes import PeerClass, build_table


def labels(netns: int) -> tuple[tuple[str, str], ...]:
    return (("k8s.pod.name", f"pod{netns}"),)


def test_a_zone_keeps_its_number_when_a_new_zone_sorts_before_it() -> None:
    numbers = ZoneNumbers()
    first = numbers.renumber(build_table("zone-b", {"10.1.0.0/16": "zone-b",
                                                    "10.2.0.0/16": "zone-c"}))
    before = {e.address: e.zone for e in first.entries if e.zone}
    # zone-a sorts first: the table itself renumbers zone-b and zone-c
    table = build_table("zone-b", {"10.1.0.0/16": "zone-b", "10.2.0.0/16": "zone-c",
                                   "10.3.0.0/16": "zone-a"})
    assert table.zone_name(1) == "zone-a"
    second = numbers.renumber(table)
    after = {e.address: e.zone for e in second.entries if e.zone}
    assert {k: v for k, v in after.items() if k in before} == before
    assert [numbers.name(after[k]) for k in sorted(after)] == [
        second.zone_name(after[k]) for k in sorted(after)]
    assert numbers.names == ["zone-b", "zone-c", "zone-a"]


def test_rows_become_packets_and_bytes_by_class_zone_and_direction() -> None:
    rows = [(7, int(PeerClass.OTHER_ZONE), 2, 1, 3, 300),
            (7, int(PeerClass.OTHER_ZONE), 2, 1, 1, 100),  # a second key of the same series
            (7, int(PeerClass.INTERNET), 0, 0, 5, 700),
            (8, 99, 0, 1, 1, 60)]  # a class this reader does not know: its number
    points = peer_points(rows, {1: "zone-a", 2: "zone-b"}.get, labels)
    got = {(p.metric.name, p.attributes): p.value for p in points}
    other = (("k8s.pod.name", "pod7"), ("network.io.direction", "transmit"),
             ("peer.class", "other_zone"), ("peer.zone", "zone-b"))
    internet = (("k8s.pod.name", "pod7"), ("network.io.direction", "receive"),
                ("peer.class", "internet"))
    assert got[("netreceiver.pod.peer.packets", other)] == 4
    assert got[("netreceiver.pod.peer.bytes", other)] == 400
    assert got[("netreceiver.pod.peer.bytes", internet)] == 700
    assert got[("netreceiver.pod.peer.packets", (("k8s.pod.name", "pod8"),
                                                 ("network.io.direction", "transmit"),
                                                 ("peer.class", "99")))] == 1
    assert not any(k.startswith(("net.peer", "network.peer", "server.", "client."))
                   for p in points for k, _ in p.attributes)


def test_the_program_gets_the_lpm_declaration_and_is_opt_in() -> None:
    probe = UNITS["peers"]
    assert not probe.default and probe.opt_in
    rendered = text(source(probe.counting), {})
    assert "PEER_TABLE\n" not in rendered
    assert "BPF_LPM_TRIE(peer_table, struct peer_table_key, struct peer_table_value" in rendered
    assert {m.name for m in probe.metrics} == {"netreceiver.pod.peer.packets",
                                               "netreceiver.pod.peer.bytes"}
