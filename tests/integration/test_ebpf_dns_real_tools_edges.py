"""The dns probe against real DNS software, continued (test_ebpf_dns_real_tools.py sets up
the pods, dnsmasq's records and the probe): IPv6, glibc's search-path expansion under
ndots:5, and a flood of malformed port-53 packets. tcpdump is the witness throughout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
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
