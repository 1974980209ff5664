"""The dns probe on this kernel: a client pod asks a DNS server in another pod.

Pod A (client) has `options timeout:1` in the resolv.conf its processes see; pod B runs
tests/support/dns_server.py, whose answers are chosen by the query name (NOERROR,
NXDOMAIN, SERVFAIL, truncated, late, none). A's client (tests/support/dns_client.py, its
own resolver) sends a known list of queries; the per-pod counters, the latency histogram,
the timeouts and late answers are compared with that list, and B's server-side counts with
what the server logged. Link-local packets are counted against an address the test
configures as Amazon Time Sync (B's node-side address: nothing leaves the machine).
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.dns import message
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.dns_pods import client_and_resolver, start_dns_server
from tests.support.pods import Pod, _die_with_parent

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
CLIENT, SERVER = 61, 62
QUERIES = ["ok.test/A/udp/2", "ok.test/A/udp/2", "ok.test/A/udp/2", "ok.test/AAAA/udp/2",
           "ok.test/AAAA/udp/2", "nx.test/A/udp/2", "nx.test/A/udp/2", "fail.test/A/udp/2",
           "tc.test/A/udp/2", "tc.test/A/tcp/2", "late.test/A/udp/3", "late.test/A/udp/1.2",
           "drop.test/A/udp/1.2"]


@pytest.fixture(scope="module")
def pods() -> Iterator[list[Pod]]:
    with client_and_resolver(CLIENT, SERVER, "timeout:1") as made:
        yield made


# alone, in one program with the other socket-hook probe, and its NO_SOCKET handler in the
# default set's skb:kfree_skb program (bpf/compose_hooks.py join, adopt)
@pytest.fixture(scope="module", params=[["dns"], ["dns", "peers"],
                                        ["packetloss", "tcptwrcv", "dns"]],
                ids=["alone", "composite", "drop-program"])
def collector(pods: tuple[Pod, Pod], request: pytest.FixtureRequest) -> Iterator[EbpfCollector]:
    server = pods[1]
    dns = DnsProbeConfig(cluster_dns=[server.pod_ip], time_sync=[server.host_ip])
    c = EbpfCollector(EbpfConfig(probes=request.param, dns=dns), "/proc", NoPods())
    assert c.statuses() == dict.fromkeys(request.param, ""), c.statuses()
    assert sorted(c.objects()) == ["+".join(request.param)]
    yield c
    c.close()


def _series(collection: Collection, name: str, pod: Pod) -> dict[tuple, object]:
    out = {}
    for point in collection.points:
        a = dict(point.attributes)
        if point.metric.name == name and a.get("k8s.pod.uid") == pod.uid:
            out[tuple(sorted((k, v) for k, v in a.items() if k.startswith(
                ("dns.", "network.transport", "linklocal.")) and k != "dns.resolver.class"))] \
                = point.value
    return out


def _run_server(pod: Pod) -> subprocess.Popen:
    return start_dns_server(pod)


def test_client_and_server_counts_latency_timeouts_and_late_answers(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    client, server = pods
    collector.collect()  # writes pod A's resolver timeout (1 s) into the kernel
    proc = _run_server(server)
    try:
        out = client.exec(sys.executable, str(SUPPORT / "dns_client.py"), server.pod_ip,
                          *QUERIES).stdout
        # rcodes as the client saw them: the late answer it waited for, none for the others
        assert json.loads(out) == [0, 0, 0, 0, 0, 3, 3, 2, 0, 0, 0, None, None]
        time.sleep(0.6)  # the late answer to the closed socket arrives (1.5 s after its query)
        collection = collector.collect()
    finally:
        proc.terminate()
        logged = json.loads(proc.communicate(timeout=5)[1].strip().splitlines()[-1])
    assert logged == {"ok/udp": 5, "nx/udp": 2, "fail/udp": 1, "tc/udp": 1, "tc/tcp": 1,
                      "late/udp": 2, "drop/udp": 1}

    queries = _series(collection, "netreceiver.pod.dns.queries", client)
    client_side = {k: v for k, v in queries.items() if ("dns.role", "client") in k}
    assert client_side == {
        (("dns.question.type", "A"), ("dns.role", "client"), ("network.transport", "udp")): 10,
        (("dns.question.type", "A"), ("dns.role", "client"), ("network.transport", "tcp")): 1,
        (("dns.question.type", "AAAA"), ("dns.role", "client"),
         ("network.transport", "udp")): 2}
    responses = _series(collection, "netreceiver.pod.dns.responses", client)
    by_rcode: dict[str, int] = {}
    for key, value in responses.items():
        by_rcode[dict(key)["dns.response.code"]] = by_rcode.get(
            dict(key)["dns.response.code"], 0) + int(value)  # type: ignore[call-overload]
    # both late answers arrived (one to a closed socket: counted, then dropped)
    assert by_rcode == {"NOERROR": 9, "NXDOMAIN": 2, "SERVFAIL": 1}
    assert sum(_series(collection, "netreceiver.pod.dns.truncated", client).values()) == 1
    assert sum(_series(collection, "netreceiver.pod.dns.timeouts", client).values()) == 3
    assert _series(collection, "netreceiver.pod.dns.late_answers", client) == {
        (("dns.late.reason", "after_timeout"),): 1, (("dns.late.reason", "no_socket"),): 1}
    assert not _series(collection, "netreceiver.pod.dns.unmatched", client)
    (latency,) = _series(collection, "netreceiver.pod.dns.latency", client).values()
    assert latency.count == 12  # type: ignore[attr-defined]
    assert 3.0 <= latency.sum < 3.5  # type: ignore[attr-defined]  # two 1.5 s late answers

    served = _series(collection, "netreceiver.pod.dns.queries", server)
    assert sum(served.values()) == 13  # type: ignore[arg-type]
    sent = _series(collection, "netreceiver.pod.dns.responses", server)
    assert sum(sent.values()) == 12  # type: ignore[arg-type]  # all but the dropped one
    for point in collection.points:  # the class comes from the configured addresses
        a = dict(point.attributes)
        if a.get("k8s.pod.uid") == client.uid and point.metric.name.startswith(
                "netreceiver.pod.dns."):
            assert a["dns.resolver.class"] == "cluster_dns", point


def test_linklocal_packets_per_pod_and_service(pods: tuple[Pod, Pod],
                                               collector: EbpfCollector) -> None:
    client, server = pods
    before = _series(collector.collect(), "netreceiver.pod.linklocal.packets", client)
    send = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range(37): s.sendto(b'x' * 48, ('{server.host_ip}', 123))\n")
    client.exec(sys.executable, "-c", send)
    after = collector.collect()
    key = (("linklocal.answered_by", "eni"), ("linklocal.service", "time_sync"))
    packets = _series(after, "netreceiver.pod.linklocal.packets", client)
    assert int(packets[key]) - int(before.get(key, 0)) == 37  # type: ignore[call-overload]
    assert not _series(after, "netreceiver.pod.linklocal.packets", server)


def _malformed() -> list[bytes]:
    """Queries a resolver should never see, and random ones (QR clear: the kernel walks a
    query's question, as dns/message.py does)."""
    header = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    fixed = [b"\x01\x02\x03", header + b"\x03www\x00\x00\x01\x00\x01",
             struct.pack("!HHHHHH", 7, 0x0100, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01",
             struct.pack("!HHHHHH", 7, 0x1900, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",
             header + b"\xc0\x0c\x00\x01\x00\x01", header + b"\x03www\xc0\x0c",
             header + b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01",
             header + b"\x3fabc", header + (b"\x3f" + b"b" * 63) * 5 + b"\x00\x00\x01\x00\x01",
             header + b"\x03www\x00\x00\x01"]
    rng = random.Random(1035)
    for _ in range(60):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        flags = rng.randrange(0x10000) & 0x7FFF  # QR clear
        qdcount = 1 if rng.random() < 0.8 else rng.randrange(3)
        fixed.append(struct.pack("!HHHHHH", rng.randrange(0x10000), flags, qdcount, 0, 0, 0)
                     + bytes([rng.randrange(1, 8)]) + body)
    return fixed


def test_unparsed_queries_by_reason_as_dns_message_parses_them(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """The kernel's checks against the user-space parser on the same bytes (no server: the
    datagrams are counted at the client's socket and dropped at the server's namespace)."""
    client, server = pods
    payloads = _malformed()
    expected: Counter[tuple] = Counter()
    for payload in payloads:
        try:
            message.parse_complete(payload)
            expected[("query",)] += 1
        except message.DnsParseError as exc:
            expected[("unparsed", exc.reason.value)] += 1
    assert len(expected) >= 5  # the sample covers most reasons
    before = collector.collect()
    send = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for hexed in sys.argv[1:]:\n"
            f"    s.sendto(bytes.fromhex(hexed), ('{server.pod_ip}', 53))\n")
    client.exec(sys.executable, "-c", send, *(p.hex() for p in payloads))
    after = collector.collect()
    seen: Counter[tuple] = Counter()
    for name, kind in (("netreceiver.pod.dns.unparsed", "unparsed"),
                       ("netreceiver.pod.dns.queries", "query")):
        old = _series(before, name, client)
        for key, value in _series(after, name, client).items():
            moved = int(value) - int(old.get(key, 0))  # type: ignore[call-overload]
            if moved:
                reason = dict(key).get("dns.unparsed.reason")
                seen[(kind, reason) if reason else (kind,)] += moved
    assert seen == expected


_LISTEN = ("import socket, sys\nl = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
           "l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           "l.bind((sys.argv[1], 53)); l.listen(1); print('ready', flush=True)\n"
           "c, _ = l.accept()\nwhile c.recv(4096): pass\n")


def test_pipelined_tcp_queries_up_to_the_limit_and_the_rest_unparsed(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """Six length-prefixed queries in one TCP write (one segment: 6 x 29 bytes, Nagle off):
    the probe parses four (TCP_MESSAGES in counting.c, the 2nd-4th through its tail call)
    and counts the segment once as unparsed for the rest."""
    client, server = pods
    messages = [struct.pack("!HHHHHH", 0x4000 + i, 0x0100, 1, 0, 0, 0)
                + b"\x04pipe\x04test\x00\x00\x01\x00\x01" for i in range(6)]
    queries = b"".join(struct.pack("!H", len(m)) + m for m in messages)
    listener = subprocess.Popen(["ip", "netns", "exec", server.netns, sys.executable, "-c",
                                 _LISTEN, server.pod_ip], stdout=subprocess.PIPE, text=True,
                                preexec_fn=_die_with_parent)
    try:
        _wait_for_line(listener, "ready", time.monotonic() + 20)
        before = collector.collect()
        client.exec(sys.executable, "-c", "import socket, sys\n"
                    "s = socket.create_connection((sys.argv[1], 53))\n"
                    "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
                    "s.sendall(bytes.fromhex(sys.argv[2])); s.close()\n",
                    server.pod_ip, queries.hex())
        after = collector.collect()
    finally:
        listener.kill()
        listener.communicate(timeout=5)
    moved = [_total(after, n, client, **m) - _total(before, n, client, **m)
             for n, m in (("netreceiver.pod.dns.queries", {"network.transport": "tcp"}),
                          ("netreceiver.pod.dns.unparsed", {}),
                          ("netreceiver.pod.dns.unparsed",
                           {"dns.unparsed.reason": "tcp_messages_past_limit"}))]
    assert moved == [4, 1, 1]  # tcp queries, unparsed, of them past the limit


def _total(collection: Collection, name: str, pod: Pod, **match: str) -> int:
    return sum(int(v) for k, v in _series(collection, name, pod).items()  # type: ignore[call-overload]
               if all((a, b) in k for a, b in match.items()))


def test_glibc_lookups_and_its_resends_after_a_timeout(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """glibc (getent) asks on one socket; unanswered, it re-sends the same queries (same
    ids) after `options timeout:1`, `attempts:2` by default: each attempt's timeout is
    counted once, the re-sent ones by the kernel when the re-send leaves, the last ones by
    the sweep."""
    client, server = pods
    proc = _run_server(server)
    try:
        names = ("netreceiver.pod.dns.queries", "netreceiver.pod.dns.responses",
                 "netreceiver.pod.dns.timeouts", "netreceiver.pod.dns.retransmits")
        time.sleep(1.1)  # earlier tests' unanswered queries expire: swept by this collection
        before = collector.collect()
        answered = client.exec("getent", "ahosts", "ok.test")
        assert "10.1.2.3" in answered.stdout, answered
        middle = collector.collect()
        moved = {n: _total(middle, n, client) - _total(before, n, client) for n in names}
        asked = moved[names[0]]  # A, and AAAA where the pod has IPv6 (AI_ADDRCONFIG)
        assert asked >= 1 and moved == {names[0]: asked, names[1]: asked, names[2]: 0,
                                        names[3]: 0}, moved
        failed = client.exec("getent", "ahosts", "drop.test", check=False)
        assert failed.returncode != 0
        time.sleep(1.1)  # the last attempts expire (1 s); the next collection sweeps them
        after = collector.collect()
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    moved = {n: _total(after, n, client) - _total(middle, n, client) for n in names}
    assert moved == {names[0]: 2 * asked, names[1]: 0, names[2]: 2 * asked,
                     names[3]: asked}, moved  # two attempts each, every one timed out once
