"""The dns probe against real DNS software: dnsmasq resolving, glibc and dig asking, tcpdump
watching, and faults injected with signals and nftables.

Pod C (client, `options timeout:1` in its resolv.conf) asks pod R (resolver) where dnsmasq
answers from its own records; for fail.test dnsmasq forwards to an upstream in R
(tests/support/dns_server.py on 127.0.0.2, which answers SERVFAIL). Every count the probe
gives is compared with tcpdump's own decoding of the same packets on C's veth, and R's
server-side counts with dnsmasq's query log (tests/support/dns_tools.py): the witnesses
share no code with the probe or with dns/message.py.
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
from otel_netreceiver.model import Collection
from tests.integration.test_ebpf_dns import _malformed
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.dns_tools import Dnsmasq, Exchange, tcpdump
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
DNS = "netreceiver.pod.dns."


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


def _counts(collection: Collection, metric: str, pod: Pod, *keys: str,
            **match: str) -> Counter[tuple]:
    """The metric's points of ``pod`` matching ``match``, summed by the ``keys`` attributes."""
    out: Counter[tuple] = Counter()
    for point in collection.points:
        a = dict(point.attributes)
        if (point.metric.name == DNS + metric and a.get("k8s.pod.uid") == pod.uid
                and all(a.get(k.replace("_", ".")) == v for k, v in match.items())):
            value = point.value
            out[tuple(a.get(k) for k in keys)] += int(getattr(value, "count", value))
    return out


class Delta:
    """What moved between two collections, per pod."""

    def __init__(self, before: Collection, after: Collection) -> None:
        self.before, self.after = before, after

    def __call__(self, metric: str, pod: Pod, *keys: str, **match: str) -> Counter[tuple]:
        moved = _counts(self.after, metric, pod, *keys, **match)
        moved.subtract(_counts(self.before, metric, pod, *keys, **match))
        return +moved

    def total(self, metric: str, pod: Pod, **match: str) -> int:
        return sum(self(metric, pod, **match).values())


def dig(client: Pod, server: str, *queries: str, options: tuple[str, ...] = ()) -> list[str]:
    """One dig process per query (name/TYPE): its socket is gone when the next starts.
    Returns the status dig printed for each ("timeout" when it got none)."""
    statuses = []
    for spec in queries:
        name, qtype = spec.split("/")
        out = client.exec(require_tool("dig"), f"@{server}", "+tries=1", "+timeout=1",
                          *options, name, qtype, check=False).stdout
        found = re.findall(r"status: (\w+)", out)
        statuses.append(found[-1] if found else "timeout")
    return statuses


def _client_matches_tcpdump(delta: Delta, client: Pod, seen: Exchange) -> None:
    """The probe's client-side counts are tcpdump's, query for query, rcode for rcode."""
    queries = delta("queries", client, "dns.question.type", "network.transport",
                    dns_role="client")
    assert queries == seen.queries
    responses = delta("responses", client, "dns.response.code", "network.transport",
                      dns_role="client")
    assert responses == seen.responses
    assert delta.total("truncated", client, dns_role="client") == seen.truncated


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
    _client_matches_tcpdump(delta, client, exchange)
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
    _client_matches_tcpdump(delta, client, exchange)
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
    _client_matches_tcpdump(delta, client, exchange)
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
    _client_matches_tcpdump(delta, client, exchange)
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
    _client_matches_tcpdump(delta, client, exchange)
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
    _client_matches_tcpdump(delta, client, exchange)
    assert delta.total("timeouts", client) == 2 * types
    assert delta.total("retransmits", client) == types
    assert exchange.late == 2 * types and exchange.unanswered == 0


@pytest.mark.xfail(strict=True, reason=(
    "the probe counts the answer to a re-sent query's first attempt as unmatched: the "
    "second answer with the same (port, id) finds no entry, as the first took it out of "
    "pending/expired; tcpdump shows both arriving after the timeout to a gone socket"))
def test_glibc_every_late_answer_to_a_resent_query_is_late(
        pods: tuple[Pod, Pod], glibc_stall: tuple[Delta, Exchange, int]) -> None:
    client, _ = pods
    delta, exchange, _types = glibc_stall
    assert delta("late_answers", client, "dns.late.reason") == {("no_socket",): exchange.late}
    assert delta.total("unmatched", client) == exchange.unmatched == 0


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
    _client_matches_tcpdump(delta, resolver, exchange)
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
    _client_matches_tcpdump(delta, searcher, exchange)
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
