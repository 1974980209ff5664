"""The dns probe against real DNS software: dnsmasq resolving, glibc and dig asking, tcpdump
watching, and faults injected with signals and nftables.

Pod C (client, `options timeout:1` in its resolv.conf) asks pod R (resolver) where dnsmasq
answers from its own records; for fail.test dnsmasq forwards to an upstream in R
(tests/support/dns_server.py on 127.0.0.2, which answers SERVFAIL). Every count the probe
gives is compared with tcpdump's own decoding of the same packets on C's veth, and R's
server-side counts with dnsmasq's query log (tests/support/dns_tools.py): the witnesses
share no code with the probe or with dns/message.py. IPv6, the search path and a
malformed flood: test_ebpf_dns_real_tools_edges.py (same pods and probe).
"""

from __future__ import annotations

import os
import re
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
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.dns_tools import Delta, Dnsmasq, Exchange, client_matches_tcpdump, dig, tcpdump
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods
from tests.support.tools import require_tool

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
CLIENT, RESOLVER = 73, 74
BIG = ",".join('"' + c * 250 + '"' for c in "abc")  # 750 bytes of TXT: over 512 without EDNS
RECORDS = ("--host-record=ok.test,10.1.2.3", f"--txt-record=big.test,{BIG}",
           "--server=/fail.test/127.0.0.2")


@pytest.fixture(scope="module")
def pods() -> Iterator[tuple[Pod, Pod]]:
    # before the pod's first process starts: `ip netns exec` bind-mounts it
    confs = [Path("/etc/netns") / f"onrpod{os.getpid() % 1000}x{i}" for i in (CLIENT, RESOLVER)]
    for conf in confs:  # R's too: its own lookups (test_ipv6_...) time out after 1 s
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "resolv.conf").write_text(f"nameserver 10.251.{RESOLVER}.2\noptions timeout:1\n")
    made = []
    try:
        made = [create_pod(CLIENT), create_pod(RESOLVER, "systemd")]
        link_pods(made)
        upstream = subprocess.Popen(["ip", "netns", "exec", made[1].netns, sys.executable,
                                     str(SUPPORT / "dns_server.py"), "127.0.0.2"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=_die_with_parent)
        _wait_for_line(upstream, "ready", time.monotonic() + 20)
        yield made[0], made[1]
        upstream.kill()
        upstream.communicate(timeout=5)
    finally:
        for pod in made:
            destroy_pod(pod)
        for conf in confs:
            shutil.rmtree(conf, ignore_errors=True)


@pytest.fixture(scope="module")
def collector(pods: tuple[Pod, Pod]) -> Iterator[EbpfCollector]:
    dns = DnsProbeConfig(cluster_dns=[pods[1].pod_ip])
    c = EbpfCollector(EbpfConfig(probes=["dns"], dns=dns), "/proc", NoPods())
    assert c.statuses() == {"dns": ""}, c.statuses()
    c.collect()  # writes C's resolver timeout (1 s) into the kernel
    yield c
    c.close()


def test_clean_lookups_by_glibc_dig_and_an_own_resolver_agree_with_tcpdump_and_dnsmasq(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    client, resolver = pods
    before = collector.collect()
    with Dnsmasq(resolver, *RECORDS) as dnsmasq, tcpdump(client.host_veth) as seen:
        assert "10.1.2.3" in client.exec("getent", "ahosts", "ok.test").stdout
        assert dig(client, resolver.pod_ip, "ok.test/A", "ok.test/AAAA", "ok.test/MX") == [
            "NOERROR"] * 3
        assert dig(client, resolver.pod_ip, "ok.test/A", options=("+tcp",)) == ["NOERROR"]
        own = client.exec(sys.executable, str(SUPPORT / "dns_client.py"), resolver.pod_ip,
                          "ok.test/A/udp/1", "ok.test/AAAA/tcp/1").stdout
        assert own.strip() == "[0, 0]"
        logged = dnsmasq.queries()
    delta = Delta(before, collector.collect())
    exchange = Exchange.of(seen, timeout=1.0)
    assert exchange.undecoded == 0 and exchange.unanswered == 0
    client_matches_tcpdump(delta, client, exchange)
    asked = sum(exchange.queries.values())
    assert asked >= 7 and sum(logged.values()) == asked  # dnsmasq received every one
    assert delta.total("queries", resolver, dns_role="server",
                       dns_resolver_class="cluster_dns") == asked
    assert delta.total("responses", resolver, dns_role="server",
                       dns_resolver_class="cluster_dns") == asked
    for quiet in ("timeouts", "late_answers", "unmatched", "retransmits", "unparsed",
                  "truncated"):
        assert delta.total(quiet, client) == 0, quiet
    assert delta.total("latency", client) == asked  # every response matched its query


def test_nxdomain_servfail_and_refused_storms_by_rcode_at_both_ends(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """NXDOMAIN from dnsmasq's own zone, SERVFAIL from its upstream (forwarded from R, so R
    is also a client there), REFUSED for a name it serves nothing for."""
    client, resolver = pods
    before = collector.collect()
    names = ([f"n{i}.test/A" for i in range(20)] + ["fail.test/A"] * 8
             + ["x.example/A"] * 3)
    with Dnsmasq(resolver, *RECORDS) as dnsmasq, tcpdump(client.host_veth) as seen:
        statuses = dig(client, resolver.pod_ip, *names)
        answered = dnsmasq.answers()
    delta = Delta(before, collector.collect())
    assert Counter(statuses) == {"NXDOMAIN": 20, "SERVFAIL": 8, "REFUSED": 3}
    assert answered == Counter(statuses)  # dnsmasq's log says the same
    exchange = Exchange.of(seen, timeout=1.0)
    client_matches_tcpdump(delta, client, exchange)
    assert {k[0]: v for k, v in exchange.responses.items()} == answered
    server = delta("responses", resolver, "dns.response.code", dns_role="server",
                   dns_resolver_class="cluster_dns")
    assert server == {(code,): n for code, n in answered.items()}
    # the SERVFAILs came from R's upstream: R asked it (class other: not a configured address)
    assert delta("responses", resolver, "dns.response.code", dns_role="client",
                 dns_resolver_class="other") == {("SERVFAIL",): 8}
    assert delta.total("timeouts", client) == 0 and delta.total("unmatched", client) == 0


def test_a_truncated_answer_makes_dig_retry_over_tcp(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    client, resolver = pods
    before = collector.collect()
    with Dnsmasq(resolver, *RECORDS) as dnsmasq, tcpdump(client.host_veth) as seen:
        assert dig(client, resolver.pod_ip, *["big.test/TXT"] * 3,
                   options=("+noedns",)) == ["NOERROR"] * 3
        logged = dnsmasq.queries()
    delta = Delta(before, collector.collect())
    exchange = Exchange.of(seen, timeout=1.0)
    assert exchange.truncated == 3 and logged == {"TXT": 6}
    assert exchange.queries == {("other", "udp"): 3, ("other", "tcp"): 3}
    client_matches_tcpdump(delta, client, exchange)
    assert delta.total("truncated", resolver, dns_role="server") == 3
    assert delta.total("timeouts", client) == 0 and delta.total("unmatched", client) == 0


def _nft(pod: Pod, ruleset: str) -> None:
    subprocess.run(["ip", "netns", "exec", pod.netns, require_tool("nft"), "-f", "-"],
                   input=ruleset, text=True, check=True, capture_output=True)


def test_nftables_dropping_every_third_query_gives_those_timeouts(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """numgen inc mod 3: deterministic, the 1st, 4th, 7th and 10th of 12 queries dropped at
    R's input, after tcpdump saw them leave C and before dnsmasq's socket."""
    client, resolver = pods
    _nft(resolver, "table inet onrdrop {\n chain input {\n"
                   "  type filter hook input priority 0;\n"
                   '  iifname "eth0" udp dport 53 numgen inc mod 3 == 0 counter drop\n }\n}\n')
    try:
        before = collector.collect()
        with Dnsmasq(resolver, *RECORDS) as dnsmasq, tcpdump(client.host_veth) as seen:
            statuses = dig(client, resolver.pod_ip, *["ok.test/A"] * 12)
            logged = dnsmasq.queries()
        time.sleep(0.2)  # the last dropped query is older than C's 1 s timeout
        delta = Delta(before, collector.collect())
        listed = resolver.exec(require_tool("nft"), "list", "table", "inet", "onrdrop").stdout
    finally:
        resolver.exec(require_tool("nft"), "delete", "table", "inet", "onrdrop", check=False)
    dropped = int(re.search(r"counter packets (\d+)", listed)[1])  # type: ignore[index]
    assert statuses.count("timeout") == dropped == 4
    exchange = Exchange.of(seen, timeout=1.0)
    assert exchange.unanswered == dropped and sum(exchange.queries.values()) == 12
    client_matches_tcpdump(delta, client, exchange)
    assert delta.total("timeouts", client) == dropped
    # the resolver pod saw only what nftables let through, as dnsmasq logged
    assert delta.total("queries", resolver, dns_role="server") == sum(logged.values()) == 8
    assert delta.total("late_answers", client) == 0 and delta.total("unmatched", client) == 0


def test_a_stopped_resolver_gives_timeouts_then_late_answers_to_gone_sockets(
        pods: tuple[Pod, Pod], collector: EbpfCollector) -> None:
    """SIGSTOP: the queries reach R's socket (the probe counts them at R) but nothing
    answers; dig gives up after 1 s and exits. SIGCONT: dnsmasq answers the queued queries
    to sockets that are gone (the kernel drops them, NO_SOCKET): late answers."""
    client, resolver = pods
    before = collector.collect()
    with Dnsmasq(resolver, *RECORDS) as dnsmasq, tcpdump(client.host_veth) as seen:
        dnsmasq.signal(signal.SIGSTOP)
        statuses = dig(client, resolver.pod_ip, *["ok.test/A"] * 3)
        time.sleep(0.1)
        stopped = collector.collect()
        assert sum(dnsmasq.queries().values()) == 0
        dnsmasq.signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while sum(dnsmasq.queries().values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    after = collector.collect()
    assert statuses == ["timeout"] * 3
    while_stopped = Delta(before, stopped)
    assert while_stopped.total("timeouts", client) == 3
    assert while_stopped.total("queries", resolver, dns_role="server") == 3  # it got there
    assert while_stopped.total("responses", resolver, dns_role="server") == 0  # no answer
    exchange = Exchange.of(seen, timeout=1.0)
    assert exchange.late == 3 and exchange.unanswered == 0
    delta = Delta(before, after)
    client_matches_tcpdump(delta, client, exchange)
    assert delta.total("timeouts", client) == 3  # once each
    assert delta("late_answers", client, "dns.late.reason") == {("no_socket",): exchange.late}
    assert delta.total("unmatched", client) == 0


@pytest.fixture(scope="module")
def glibc_stall(pods: tuple[Pod, Pod],
                collector: EbpfCollector) -> tuple[Delta, Exchange, int]:
    """getent (glibc: one socket, `timeout:1`, `attempts:2` by default, the same id re-sent)
    against a stopped dnsmasq, which then answers every attempt it queued: all of them to a
    socket that is gone. Returns what moved, tcpdump's view, and the types glibc asked."""
    client, resolver = pods
    before = collector.collect()
    with Dnsmasq(resolver, *RECORDS) as dnsmasq, tcpdump(client.host_veth) as seen:
        dnsmasq.signal(signal.SIGSTOP)
        assert client.exec("getent", "ahosts", "ok.test", check=False).returncode != 0
        time.sleep(0.1)
        dnsmasq.signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while (dnsmasq.log.read_text().count("config ok.test") < 2
               and time.monotonic() < deadline):
            time.sleep(0.05)
    exchange = Exchange.of(seen, timeout=1.0)
    types = len({s.qtype for s in seen if not s.response})
    return Delta(before, collector.collect()), exchange, types


def test_glibc_resends_to_a_stalled_resolver_count_each_attempt_once(
        pods: tuple[Pod, Pod], glibc_stall: tuple[Delta, Exchange, int]) -> None:
    client, _ = pods
    delta, exchange, types = glibc_stall
    assert sum(exchange.queries.values()) == 2 * types  # two attempts per type, same ids
    client_matches_tcpdump(delta, client, exchange)
    assert delta.total("timeouts", client) == 2 * types
    assert delta.total("retransmits", client) == types
    assert exchange.late == 2 * types and exchange.unanswered == 0


def test_glibc_every_late_answer_to_a_resent_query_is_late(
        pods: tuple[Pod, Pod], glibc_stall: tuple[Delta, Exchange, int]) -> None:
    client, _ = pods
    delta, exchange, _types = glibc_stall
    assert delta("late_answers", client, "dns.late.reason") == {("no_socket",): exchange.late}
    assert delta.total("unmatched", client) == exchange.unmatched == 0
