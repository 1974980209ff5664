"""The dns probe against real DNS software, continued (test_ebpf_dns_real_tools.py sets up
the pods, dnsmasq's records and the probe): IPv6, glibc's search-path expansion under
ndots:5, glibc's TCP fallback after a truncated answer (and when TCP is refused), and a
flood of malformed port-53 packets. tcpdump and dnsmasq's log are the witnesses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from tests.integration.test_ebpf_dns import _malformed
from tests.integration.test_ebpf_dns_real_tools import RECORDS, collector, pods
from tests.integration.test_ebpf_probes import REASON
from tests.support.dns_tools import (
    Delta,
    Dnsmasq,
    Exchange,
    client_matches_tcpdump,
    dig,
    tcpdump,
)
from tests.support.pods import Pod, create_pod, destroy_pod
from tests.support.sdk_node import link_pods

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

__all__ = ["collector", "pods"]  # the fixtures, module-scoped here too


def test_ipv6_lookups_timeouts_and_late_answers_on_the_resolver_pods_loopback(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """dig asks dnsmasq on ::1 inside R (R is client and server): IPv6 at the socket hooks,
    and, with dnsmasq stopped then continued, late IPv6 answers to gone sockets at
    skb:kfree_skb; tcpdump on R's lo is the witness."""
    _, resolver = pods
    before = collector.collect()
    with Dnsmasq(resolver, *RECORDS, listen="::1") as dnsmasq, \
            tcpdump("lo", "ip6 and port 53", netns=resolver.netns) as seen:
        assert dig(resolver, "::1", "ok.test/A", "ok.test/AAAA", "nope.test/A") == [
            "NOERROR", "NOERROR", "NXDOMAIN"]
        assert dig(resolver, "::1", "ok.test/AAAA", options=("+tcp",)) == ["NOERROR"]
        dnsmasq.signal(signal.SIGSTOP)
        assert dig(resolver, "::1", "ok.test/A", "ok.test/AAAA") == ["timeout"] * 2
        time.sleep(0.1)
        stopped = collector.collect()
        dnsmasq.signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while sum(dnsmasq.queries().values()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    delta = Delta(before, collector.collect())
    assert Delta(before, stopped).total("timeouts", resolver) == 2
    exchange = Exchange.of(seen, timeout=1.0)
    assert sum(exchange.queries.values()) == 6 and exchange.late == 2
    client_matches_tcpdump(delta, resolver, exchange)
    assert delta.total("queries", resolver, dns_role="server") == 6
    assert delta.total("timeouts", resolver) == 2
    assert delta("late_answers", resolver, "dns.late.reason") == {("no_socket",): 2}
    assert delta.total("unmatched", resolver) == 0


def test_glibc_search_path_expansion_with_ndots_5(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """A third pod whose resolv.conf is a Kubernetes pod's (search path, ndots:5): glibc asks
    api.ns.svc.test (NXDOMAIN) before api.svc.test (the answer), for each type it asks; the
    NXDOMAINs are that pod's, as tcpdump saw them on its veth and dnsmasq logged them."""
    client, resolver = pods
    searcher_index = 77
    conf = Path("/etc/netns") / f"onrpod{os.getpid() % 1000}x{searcher_index}"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "resolv.conf").write_text(f"nameserver {resolver.pod_ip}\nsearch ns.svc.test "
                                      "svc.test cluster.test\noptions ndots:5 timeout:1\n")
    searcher = None
    try:
        searcher = create_pod(searcher_index)
        link_pods([searcher])
        before = collector.collect()
        with Dnsmasq(resolver, *RECORDS, "--host-record=api.svc.test,10.1.2.4") as dnsmasq, \
                tcpdump(searcher.host_veth) as seen:
            assert "10.1.2.4" in searcher.exec("getent", "ahosts", "api").stdout
            answered = dnsmasq.answers()
        delta = Delta(before, collector.collect())
    finally:
        if searcher is not None:
            destroy_pod(searcher)
        shutil.rmtree(conf, ignore_errors=True)
    names = [s.name for s in seen if not s.response]
    types = len(names) // 2
    assert types >= 1 and sorted(set(names)) == ["api.ns.svc.test.", "api.svc.test."]
    exchange = Exchange.of(seen, timeout=1.0)
    assert exchange.responses == {("NXDOMAIN", "udp"): types, ("NOERROR", "udp"): types}
    assert answered == {"NXDOMAIN": types}
    client_matches_tcpdump(delta, searcher, exchange)
    assert delta.total("queries", client) == 0  # the other client pod asked nothing
    assert delta.total("timeouts", searcher) == 0


def test_a_flood_of_malformed_port_53_packets_is_counted_and_the_probe_still_works(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """3,000 malformed queries and one 3,000-byte query (IP fragments on the wire) from C to
    R's port 53 (nothing listens yet); then dnsmasq starts and a good query is matched."""
    from otel_netreceiver.dns import message

    client, resolver = pods
    payloads = (_malformed() * 43)[:3000]
    big = (b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02ok\x04test\x00\x00\x01\x00\x01"
           + b"\x00" * 3000)
    expected: Counter[str] = Counter()
    for payload in [*payloads, big]:
        try:
            message.parse_complete(payload)
            expected["query"] += 1
        except message.DnsParseError as exc:
            expected[exc.reason.value] += 1
    send = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for hexed in sys.stdin.read().split():\n"
            f"    s.sendto(bytes.fromhex(hexed), ('{resolver.pod_ip}', 53))\n")
    before = collector.collect()
    with tcpdump(client.host_veth) as seen:
        subprocess.run(["ip", "netns", "exec", client.netns, sys.executable, "-c", send],
                       input="\n".join(p.hex() for p in [*payloads, big]), text=True,
                       check=True)
    middle = collector.collect()
    assert sum(1 for s in seen if not s.response) == len(payloads) + 1  # as tcpdump saw
    flood = Delta(before, middle)
    moved = {reason: n for (reason,), n in flood("unparsed", client,
                                                  "dns.unparsed.reason").items()}
    moved["query"] = flood.total("queries", client, dns_role="client")
    assert moved == +expected
    assert collector.statuses() == {"dns": ""} and not middle.errors
    lost = [p.value for p in middle.points
            if p.metric.name == "netreceiver.bpf.lost" and dict(p.attributes)["probe"] == "dns"]
    assert lost == [0]
    with Dnsmasq(resolver, *RECORDS):
        assert dig(client, resolver.pod_ip, "ok.test/A") == ["NOERROR"]
    after = Delta(middle, collector.collect())
    assert after("responses", client, "dns.response.code", dns_role="client") == {
        ("NOERROR",): 1}
    assert after.total("latency", client) == 1 and after.total("unmatched", client) == 0


MANY = tuple(f"--host-record=many.test,10.2.0.{i}" for i in range(1, 41))  # 40 A: > 512 B


@pytest.fixture(scope="module")
def dual_stack(pods: tuple[Pod, Pod]) -> Iterator[Pod]:
    """A client pod with a global IPv6 address too, so glibc (AI_ADDRCONFIG) asks A and
    AAAA: its TCP fallback then writes both queries in one segment (resolv/res_send.c
    send_vc, one writev)."""
    index = 78
    conf = Path("/etc/netns") / f"onrpod{os.getpid() % 1000}x{index}"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "resolv.conf").write_text(f"nameserver {pods[1].pod_ip}\noptions timeout:1\n")
    pod = None
    try:
        pod = create_pod(index)
        link_pods([pod])
        pod.exec("sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0")
        pod.exec("ip", "-6", "addr", "add", "fd00:251:78::2/64", "dev", "eth0", "nodad")
        yield pod
    finally:
        if pod is not None:
            destroy_pod(pod)
        shutil.rmtree(conf, ignore_errors=True)


@pytest.fixture(scope="module")
def glibc_tcp_fallback(pods: tuple[Pod, Pod], collector: EbpfCollector,
                       dual_stack: Pod) -> tuple[Delta, Exchange, Counter[str]]:
    _, resolver = pods
    before = collector.collect()
    with Dnsmasq(resolver, *RECORDS, *MANY) as dnsmasq, \
            tcpdump(dual_stack.host_veth) as seen:
        assert "10.2.0." in dual_stack.exec("getent", "ahosts", "many.test").stdout
        logged = dnsmasq.queries()
    return Delta(before, collector.collect()), Exchange.of(seen, timeout=1.0), logged


def test_glibc_retries_a_truncated_answer_over_tcp(
        dual_stack: Pod, glibc_tcp_fallback: tuple[Delta, Exchange, Counter[str]]) -> None:
    delta, exchange, logged = glibc_tcp_fallback
    udp = {k: v for k, v in exchange.queries.items() if k[1] == "udp"}
    rounds = udp[("A", "udp")]  # getent ahosts may resolve more than once
    assert udp == {("A", "udp"): rounds, ("AAAA", "udp"): rounds}
    assert logged == {"A": 2 * rounds, "AAAA": 2 * rounds}  # UDP, then both again over TCP
    assert exchange.truncated == rounds  # the 40 A records did not fit in 512 bytes
    assert delta.total("truncated", dual_stack, dns_role="client") == rounds
    assert delta("queries", dual_stack, "dns.question.type", "network.transport",
                 dns_role="client", network_transport="udp") == udp
    assert delta.total("queries", dual_stack, network_transport="tcp") >= rounds
    assert delta.total("timeouts", dual_stack) == 0


def test_glibc_every_query_of_a_pipelined_tcp_segment_is_counted(
        dual_stack: Pod, glibc_tcp_fallback: tuple[Delta, Exchange, Counter[str]]) -> None:
    delta, _exchange, logged = glibc_tcp_fallback
    assert delta.total("queries", dual_stack, dns_role="client") == sum(logged.values())
    assert delta.total("unmatched", dual_stack) == 0


def test_a_tcp_fallback_refused_leaves_truncated_answers_without_tcp_queries(
        pods: tuple[Pod, Pod], collector: EbpfCollector, dual_stack: Pod) -> None:
    """nftables in R resets TCP to port 53: glibc gets the truncated UDP answer, its TCP
    connection is refused, the lookup fails. The probe's signature: truncated, no TCP."""
    _, resolver = pods
    subprocess.run(["ip", "netns", "exec", resolver.netns, "nft", "-f", "-"], check=True,
                   text=True, capture_output=True,
                   input="table inet onrtcp {\n chain input {\n  type filter hook input "
                         "priority 0;\n  tcp dport 53 reject with tcp reset\n }\n}\n")
    try:
        before = collector.collect()
        with Dnsmasq(resolver, *RECORDS, *MANY) as dnsmasq, \
                tcpdump(dual_stack.host_veth) as seen:
            failed = dual_stack.exec("getent", "ahosts", "many.test", check=False)
            logged = dnsmasq.queries()
        delta = Delta(before, collector.collect())
    finally:
        resolver.exec("nft", "delete", "table", "inet", "onrtcp", check=False)
    exchange = Exchange.of(seen, timeout=1.0)
    assert failed.returncode != 0 and logged["A"] == logged["AAAA"] >= 1
    assert sum(exchange.queries.values()) == sum(logged.values())  # all of them UDP
    assert not any(k[1] == "tcp" for k in exchange.queries)
    assert exchange.truncated == logged["A"]
    assert delta.total("truncated", dual_stack, dns_role="client") == exchange.truncated
    assert delta.total("queries", dual_stack, network_transport="tcp") == 0
    client_matches_tcpdump(delta, dual_stack, exchange)
