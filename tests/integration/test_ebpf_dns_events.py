"""DNS failure event records with names, ndots expansions and TC -> TCP fallbacks, on this
kernel, with real clients and servers in test pods.

Pod A (client) sees a resolv.conf with `options timeout:1 ndots:5` and a Kubernetes-like
search path. Pod B answers with tests/support/dns_server.py (answers chosen by the first
label: late, drop, fail, refused, nx, tc) and, for the search-path test, with Debian's
dnsmasq (every name local: NXDOMAIN unless configured). Clients: tests/support/dns_client.py
(its own resolver), glibc (`getent ahosts`) and `dig` (which retries a truncated answer over
TCP by itself; nftables in pod B resets one such retry). The records are compared with
what was asked; the counters with what the clients did.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.source import EventSource
from otel_netreceiver.model import Collection
from tests.integration.test_ebpf_probes import REASON
from tests.support.dns_pods import client_and_resolver, dns_counting_and_events, start_dns_server
from tests.support.pods import Pod, _die_with_parent

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
CLIENT, SERVER = 65, 66
SEARCH = "a.svc.cluster.local svc.cluster.local cluster.local"


@pytest.fixture(scope="module")
def pods() -> Iterator[list[Pod]]:
    with client_and_resolver(CLIENT, SERVER, "timeout:1 attempts:1 ndots:5", SEARCH) as made:
        yield made


@pytest.fixture(scope="module")
def agent(pods: tuple[Pod, Pod]) -> Iterator[tuple[EbpfCollector, EventSource, list[Event]]]:
    with dns_counting_and_events(pods[1].pod_ip) as made:  # pod A's 1 s timeout
        yield made


def _server(pod: Pod) -> subprocess.Popen:
    return start_dns_server(pod)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.communicate(timeout=5)


def _of(events: list[Event], pod: Pod, name: str) -> list[dict[str, str]]:
    inode = int(os.readlink(f"/proc/{pod.holder.pid}/ns/net")[5:-1])  # type: ignore[union-attr]
    return [{**dict(e.attributes), "reason": e.reason,
             "client": f"{e.source.address}:{e.source.port}" if e.source else "",
             "server": f"{e.destination.address}:{e.destination.port}"
             if e.destination else ""}
            for e in events if e.name == name and e.netns == inode]


def _wait(check, timeout: float = 6.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)


def test_failure_records_name_the_query_pod_and_numbers(
        pods: tuple[Pod, Pod], agent: tuple[EbpfCollector, EventSource, list[Event]]) -> None:
    client, server = pods
    _, _, events = agent
    proc = _server(server)
    try:
        queries = ["drop.one.test/A/udp/1.3", "late.two.test/A/udp/3", "fail.three.test/A/udp/2",
                   "refused.four.test/AAAA/udp/2"] + ["nx.storm.test/A/udp/2"] * 25 + [
                   "late.five.test/A/udp/1.2"]  # the socket is closed when the answer comes
        client.exec(sys.executable, str(SUPPORT / "dns_client.py"), server.pod_ip, *queries)
        _wait(lambda: len(_of(events, client, "DNS_TIMEOUT")) >= 3
              and len(_of(events, client, "DNS_LATE_ANSWER")) >= 2)
    finally:
        _stop(proc)
    timeouts = {e["dns.question.name"]: e for e in _of(events, client, "DNS_TIMEOUT")}
    assert set(timeouts) == {"drop.one.test", "late.two.test", "late.five.test"}, timeouts
    lates = {e["dns.question.name"]: e for e in _of(events, client, "DNS_LATE_ANSWER")}
    assert {n: e["reason"] for n, e in lates.items()} == {"late.two.test": "after_timeout",
                                                          "late.five.test": "no_socket"}
    late = lates["late.two.test"]
    assert late["dns.timeout.ns"] == str(10**9)
    answered = int(late["dns.answer.time_unix_nano"]) - int(late["dns.query.time_unix_nano"])
    assert int(late["dns.answer.latency_ns"]) == answered
    assert 1.4e9 < answered < 2.5e9  # the server answers 1.5 s after the query
    assert int(late["dns.late.ns"]) == answered - 10**9
    for record in lates.values():
        assert record["server"] == f"{server.pod_ip}:53"
        assert record["client"].startswith(f"{client.pod_ip}:")
    assert int(lates["late.five.test"]["dns.late.ns"]) > 4e8  # answered 1.5 s after
    for record in timeouts.values():
        assert record["dns.question.type"] == "A" and record["network.transport"] == "udp"
        assert int(record["latency.ns"]) >= 10**9  # waited at least the pod's timeout
    fails = {e["dns.question.name"]: e for e in _of(events, client, "DNS_SERVFAIL")}
    assert {n: (e["reason"], e["dns.question.type"]) for n, e in fails.items()} == {
        "fail.three.test": ("SERVFAIL", "A"), "refused.four.test": ("REFUSED", "AAAA")}
    (burst,) = _of(events, client, "DNS_NXDOMAIN_BURST")
    assert burst["dns.question.name"] == "nx.storm.test" and burst["dns.nxdomain.count"] == "20"
    assert not _of(events, server, "DNS_TIMEOUT")  # the server's side makes no records


def _count(collection: Collection, name: str, pod: Pod, **attrs: str) -> int:
    total = 0
    for point in collection.points:
        a = dict(point.attributes)
        if point.metric.name == name and a.get("k8s.pod.uid") == pod.uid and all(
                a.get(k) == v for k, v in attrs.items()):
            total += int(point.value)  # type: ignore[call-overload]
    return total


def _dnsmasq(pod: Pod) -> subprocess.Popen:
    """Every name local (NXDOMAIN) but www.example.com (10.1.2.3), no upstream, no cache."""
    proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, "dnsmasq", "--keep-in-foreground",
                             "--no-resolv", "--no-hosts", "--cache-size=0", "--port=53",
                             f"--listen-address={pod.pod_ip}", "--bind-interfaces",
                             "--local=/#/", "--address=/www.example.com/10.1.2.3",
                             "--log-facility=-", "--log-queries", "--user=root",
                             "--pid-file="], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=_die_with_parent)
    time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[0]
    return proc


def test_search_path_expansion_counts_one_per_lookup(
        pods: tuple[Pod, Pod], agent: tuple[EbpfCollector, EventSource, list[Event]]) -> None:
    client, server = pods
    collector = agent[0]
    before = _count(collector.collect(), "netreceiver.pod.dns.ndots_expansions", client)
    proc = _dnsmasq(server)
    try:
        for _ in range(3):  # three lookups, each fanned over the three search suffixes
            out = client.exec("getent", "ahosts", "www.example.com").stdout
            assert "10.1.2.3" in out, out
        out = client.exec("getent", "ahosts", "kubernetes", check=False)  # NXDOMAIN throughout
        assert out.returncode != 0
    finally:
        proc.terminate()
        log = proc.communicate(timeout=5)[0]
    assert log.count("query[A] www.example.com.a.svc.cluster.local") == 3, log
    after = collector.collect()
    # 3 lookups that found the name, 1 that fanned out and found nothing
    assert _count(after, "netreceiver.pod.dns.ndots_expansions", client) - before == 4
    assert _count(after, "netreceiver.pod.dns.ndots_expansions", server) == 0


@contextlib.contextmanager
def _tcp_reset(pod: Pod) -> Iterator[None]:
    """nftables in the pod answers TCP to port 53 with a reset (connection refused)."""
    rules = ("add table inet onrtc\nadd chain inet onrtc input { type filter hook input "
             "priority 0; }\nadd rule inet onrtc input tcp dport 53 reject with tcp reset\n")
    subprocess.run(["ip", "netns", "exec", pod.netns, "nft", "-f", "-"], input=rules,
                   text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "netns", "exec", pod.netns, "nft", "delete", "table", "inet",
                        "onrtc"], check=False)


def test_truncated_answer_then_tcp_ok_or_failed(
        pods: tuple[Pod, Pod], agent: tuple[EbpfCollector, EventSource, list[Event]]) -> None:
    client, server = pods
    collector = agent[0]
    name = "netreceiver.pod.dns.tcp_fallbacks"
    first = collector.collect()
    ok0 = _count(first, name, client, **{"dns.fallback.result": "ok"})
    failed0 = _count(first, name, client, **{"dns.fallback.result": "failed"})
    proc = _server(server)
    try:
        out = client.exec("dig", f"@{server.pod_ip}", "+tries=1", "+time=2", "tc.ok.test").stdout
        assert "10.1.2.3" in out, out  # dig retried over TCP by itself
        client.exec("dig", f"@{server.pod_ip}", "+tries=1", "+time=2", "+ignore", "tc.no.test")
        with _tcp_reset(server):  # dig's TCP retry is refused
            out = client.exec("dig", f"@{server.pod_ip}", "+tries=1", "+time=2",
                              "tc.refused.test", check=False).stdout
        assert "10.1.2.3" not in out, out
    finally:
        _stop(proc)
    time.sleep(1.1)  # the pod's timeout passes for the one nobody retried
    after = collector.collect()
    assert _count(after, name, client, **{"dns.fallback.result": "ok"}) - ok0 == 1
    assert _count(after, name, client, **{"dns.fallback.result": "failed"}) - failed0 == 2
