"""DNS failure records (events.c) against the counting program's counts (counting.c), on the
same traffic from real clients: every attempt of a re-sent query and every query of a
pipelined TCP segment gets its record, as each gets its count.

Pod C (glibc, `options timeout:1`, attempts 2 by default, an IPv6 address too so getent
asks A and AAAA) asks pod R: dnsmasq, stopped then continued (glibc re-sends each id from
the same port after 1 s, dnsmasq then answers all four attempts to a socket that is gone),
or over TCP (`RES_OPTIONS=use-vc`: glibc writes both queries in one segment, resolv/res_send.c
send_vc, one writev) for a name dnsmasq refuses. The repository's test server (which
reads one message per connection) leaves the second query of a pipelined pair, and with
`drop` both, unanswered: timeouts of queries that were never first in their segment.
An answer whose question does not parse is matched by its header, by both programs. Each
test runs with the records' programs loaded alone, hosted in the counting object, and
hosted in the socket-hook composite of dns and peers.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.events.model import Event
from tests.integration.test_ebpf_probes import REASON
from tests.support.dns_pods import client_and_resolver, dns_counting_and_events, start_dns_server
from tests.support.dns_tools import Delta, Dnsmasq, tcpdump
from tests.support.pods import Pod

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

CLIENT, RESOLVER = 83, 84
Agent = tuple[EbpfCollector, list[Event]]


@pytest.fixture(scope="module")
def pods() -> Iterator[list[Pod]]:
    with client_and_resolver(CLIENT, RESOLVER, "timeout:1") as made:
        client = made[0]  # a global IPv6 address: glibc (AI_ADDRCONFIG) asks AAAA too
        client.exec("sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0")
        client.exec("ip", "-6", "addr", "add", f"fd00:251:{CLIENT}::2/64", "dev", "eth0",
                    "nodad")
        yield made


@pytest.fixture(scope="module", params=[(False, ("dns",)), (True, ("dns",)),
                                        (True, ("dns", "peers"))],
                ids=["two objects", "hosted", "hosted with peers"])
def agent(pods: list[Pod], request: pytest.FixtureRequest) -> Iterator[Agent]:
    """The records' programs as an object of their own, and compiled into the counting
    object (events/hosting.py: the agent's way when both are on), alone or the socket-hook
    composite with peers (bpf/compose_hooks.py)."""
    hosted, probes = request.param
    with dns_counting_and_events(pods[1].pod_ip, hosted, probes) as (collector, _, events):
        yield collector, events


def _records(events: list[Event], pod: Pod, name: str) -> Counter[tuple[str, str, str]]:
    """(question name, type, reason) of the records of type ``name`` about ``pod``'s
    queries (the client's address is the record's source)."""
    return Counter((e.attribute("dns.question.name"), e.attribute("dns.question.type"),
                    e.reason) for e in events
                   if e.name == name and e.source and e.source.address == pod.pod_ip)


def _until(check: Callable[[], bool], timeout: float = 8.0) -> None:
    end = time.monotonic() + timeout
    while not check() and time.monotonic() < end:
        time.sleep(0.1)
    time.sleep(0.3)  # a record or count past the expected one would show now


def test_every_attempt_of_a_resent_query_gets_its_timeout_and_late_answer_record(
        pods: list[Pod], agent: Agent) -> None:
    client, resolver = pods
    collector, events = agent
    mark = len(events)
    before = collector.collect()
    with Dnsmasq(resolver, "--host-record=ok.test,10.1.2.3") as dnsmasq, \
            tcpdump(client.host_veth) as seen:
        dnsmasq.signal(signal.SIGSTOP)
        assert client.exec("getent", "ahosts", "ok.test", check=False).returncode != 0
        time.sleep(0.1)
        dnsmasq.signal(signal.SIGCONT)
        _until(lambda: dnsmasq.log.read_text().count("config ok.test") >= 4)
    _until(lambda: sum(_records(events[mark:], client, "DNS_LATE_ANSWER").values()) >= 4)
    delta = Delta(before, collector.collect())
    queries = Counter(s.qtype for s in seen if not s.response)
    assert queries == {"A": 2, "AAAA": 2}  # two attempts per type, the same id each
    assert delta.total("retransmits", client) == 2
    assert delta.total("timeouts", client) == 4
    assert delta("late_answers", client, "dns.late.reason") == {("no_socket",): 4}
    new = events[mark:]
    assert _records(new, client, "DNS_TIMEOUT") == {
        ("ok.test", "A", "timeout"): 2, ("ok.test", "AAAA", "timeout"): 2}
    assert _records(new, client, "DNS_LATE_ANSWER") == {
        ("ok.test", "A", "no_socket"): 2, ("ok.test", "AAAA", "no_socket"): 2}


def test_every_query_of_a_pipelined_tcp_segment_gets_its_refused_record(
        pods: list[Pod], agent: Agent) -> None:
    client, resolver = pods
    collector, events = agent
    mark = len(events)
    before = collector.collect()
    with Dnsmasq(resolver) as dnsmasq, tcpdump(client.host_veth) as seen:
        failed = client.exec("env", "RES_OPTIONS=use-vc", "getent", "ahosts", "x.example",
                             check=False)
        answered, logged = dnsmasq.answers(), dnsmasq.queries()
    assert failed.returncode != 0
    delta = Delta(before, collector.collect())
    pairs = logged["A"]
    assert logged == {"A": pairs, "AAAA": pairs} and answered == {"REFUSED": 2 * pairs}
    # one segment per pair (tcpdump decodes its first message only)
    assert len([s for s in seen if not s.response and s.transport == "tcp"]) == pairs
    assert delta("queries", client, "dns.question.type", network_transport="tcp") == {
        ("A",): pairs, ("AAAA",): pairs}
    refused = delta("responses", client, "dns.response.code", dns_role="client",
                    network_transport="tcp")
    assert refused == {("REFUSED",): 2 * pairs} and pairs >= 1
    _until(lambda: sum(_records(events[mark:], client, "DNS_SERVFAIL").values()) >= 2 * pairs)
    records = [e for e in events[mark:] if e.name == "DNS_SERVFAIL"]
    assert _records(records, client, "DNS_SERVFAIL") == {
        ("x.example", "A", "REFUSED"): pairs, ("x.example", "AAAA", "REFUSED"): pairs}
    for record in records:  # each matched its query: the time it was asked is known
        assert record.attribute("dns.query.time_unix_nano"), record.attributes
        assert record.attribute("network.transport") == "tcp"
    assert delta.total("unmatched", client) == 0


PIPELINE = """
import socket, struct, sys, time
def query(ident, name, qtype):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    body = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\\0" \\
        + struct.pack("!HH", qtype, 1)
    return struct.pack("!H", len(body)) + body
s = socket.create_connection((sys.argv[1], 53))
s.sendall(query(0x4141, "drop.first.test", 1) + query(0x4242, "drop.second.test", 28))
time.sleep(1.5)
"""


def test_unanswered_pipelined_tcp_queries_each_get_a_timeout_record(
        pods: list[Pod], agent: Agent) -> None:
    """Two queries in one segment to the test server, which answers neither (drop)."""
    client, resolver = pods
    collector, events = agent
    mark = len(events)
    server = start_dns_server(resolver)
    try:
        before = collector.collect()
        client.exec(sys.executable, "-c", PIPELINE, resolver.pod_ip)
        time.sleep(0.1)
        delta = Delta(before, collector.collect())
    finally:
        server.terminate()
        server.communicate(timeout=5)
    assert delta("queries", client, "dns.question.type", network_transport="tcp") == {
        ("A",): 1, ("AAAA",): 1}
    assert delta.total("timeouts", client) == 2
    _until(lambda: sum(_records(events[mark:], client, "DNS_TIMEOUT").values()) >= 2)
    assert _records(events[mark:], client, "DNS_TIMEOUT") == {
        ("drop.first.test", "A", "timeout"): 1, ("drop.second.test", "AAAA", "timeout"): 1}


# one answer whose question is a compression pointer (to itself): counting.c counts the
# answer by its header (its question unparsed is no reason not to match it)
POINTER_ANSWER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
query, peer = s.recvfrom(512)
s.sendto(query[:2] + b"\\x81\\x80" + query[4:12] + b"\\xc0\\x0c" + query[-4:], peer)
"""
ASK = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], 53))
s.settimeout(3)
s.send(struct.pack("!HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0) + b"\\x07pointer\\x04test\\x00"
       + struct.pack("!HH", 1, 1))
s.recv(512)
"""


def test_an_answer_whose_question_does_not_parse_still_matches_its_query(
        pods: list[Pod], agent: Agent) -> None:
    """No DNS_TIMEOUT record for a query the counting program counts answered in time."""
    client, resolver = pods
    collector, events = agent
    mark = len(events)
    server = subprocess.Popen(["ip", "netns", "exec", resolver.netns, sys.executable, "-c",
                               POINTER_ANSWER, resolver.pod_ip], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None and "ready" in server.stdout.readline()
        before = collector.collect()
        client.exec(sys.executable, "-c", ASK, resolver.pod_ip)
        delta = Delta(before, collector.collect())
    finally:
        server.kill()
        server.communicate(timeout=5)
    assert delta.total("queries", client) == 1 and delta.total("unmatched", client) == 0
    assert delta.total("responses", client, dns_role="client") == 1
    time.sleep(2.5)  # past the pod's 1 s timeout and the next event sweep (once a second)
    assert Delta(before, collector.collect()).total("timeouts", client) == 0
    assert not _records(events[mark:], client, "DNS_TIMEOUT")
