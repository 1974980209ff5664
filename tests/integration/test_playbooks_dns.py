"""The DNS playbooks on this kernel: the dns probe's counts of a real client and a real
resolver in two test pods, through the agent's history, to ``diagnose``'s verdicts.

Pod A (client, `options timeout:1` in its resolv.conf) asks pod B, which runs
tests/support/dns_server.py (answers chosen by the query name: ok, fail, late, drop).
Each phase is one window of the history: a clean run gives no DNS finding; queries B
receives and never answers are timeouts on B's side (B is named); queries an nftables rule
drops before B sees them are lost on the way (B answered all it got); an answer after A's
timeout is case 1; SERVFAIL names the resolver that sent it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.diagnosis.engine import diagnose
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Finding, Question
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.k8s.directory import NoPods
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
CLIENT, SERVER = 66, 67
DNS_VERDICTS = {"dns_timeouts", "dns_timeouts_resolver_not_answering",
                "dns_timeouts_lost_before_resolver", "dns_answer_after_client_timeout",
                "dns_server_failure", "dns_throttled_at_eni", "udp_no_listener"}
LOST_UDP_LENGTH = 8 + 12 + len(b"\x04lost\x04test\x00") + 4  # a "lost.test" A query


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Pod, Pod, EbpfCollector, History, subprocess.Popen]]:
    conf = Path("/etc/netns") / f"onrpod{os.getpid() % 1000}x{CLIENT}"  # tests/support/pods.py
    conf.mkdir(parents=True, exist_ok=True)
    conf.joinpath("resolv.conf").write_text(f"nameserver 10.251.{SERVER}.2\noptions timeout:1\n")
    made: list[Pod] = []
    collector = server = None
    try:
        made = [create_pod(CLIENT), create_pod(SERVER)]
        link_pods(made)
        client, resolver = made
        dns = DnsProbeConfig(cluster_dns=[resolver.pod_ip])
        collector = EbpfCollector(EbpfConfig(probes=["dns"], dns=dns), "/proc", NoPods())
        assert collector.statuses() == {"dns": ""}, collector.statuses()
        history = History(600.0, metric_names(), born_at_zero={"ebpf"})
        server = subprocess.Popen(["ip", "netns", "exec", resolver.netns, sys.executable,
                                   str(SUPPORT / "dns_server.py"), resolver.pod_ip],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=_die_with_parent)
        _wait_for_line(server, "ready", time.monotonic() + 20)
        yield client, resolver, collector, history, server
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if collector is not None:
            collector.close()
        for pod in made:
            destroy_pod(pod)
        shutil.rmtree(conf, ignore_errors=True)


def _phase(setup, *queries: str, settle: float = 0.0) -> list[Finding]:
    """Collect, run the client's queries, wait, collect: the findings of that window."""
    client, resolver, collector, history, _ = setup
    history.update(collector.collect())  # the window's baseline (and the pod's timeout)
    start = time.time_ns()
    out = client.exec(sys.executable, str(SUPPORT / "dns_client.py"), resolver.pod_ip,
                      *queries).stdout
    assert len(json.loads(out)) == len(queries)
    time.sleep(settle)
    history.update(collector.collect())
    source = HistorySource(history)
    return diagnose(RULES, source, source, Question("", start - 1, time.time_ns(),
                                                    every_pod=True))


def _dns(findings: list[Finding], pod: Pod) -> list[Finding]:
    return [f for f in findings if dict(f.subject).get("k8s.pod.uid") == pod.uid
            and f.verdict in DNS_VERDICTS]


def test_a_clean_run_gives_no_dns_finding(setup) -> None:
    findings = _phase(setup, *["ok.test/A/udp/2"] * 4, "ok.test/AAAA/udp/2")
    assert not [f for f in findings if f.verdict in DNS_VERDICTS], findings


def test_queries_the_resolver_received_and_never_answered_are_its_side(setup) -> None:
    client, resolver = setup[0], setup[1]
    findings = _phase(setup, "ok.test/A/udp/2", *["drop.test/A/udp/1.2"] * 3, settle=0.3)
    (finding,) = _dns(findings, client)
    assert finding.verdict == "dns_timeouts_resolver_not_answering"
    assert [dict(r)["k8s.pod.uid"] for r in finding.related] == [resolver.uid]
    assert "3 queries timed out" in finding.summary
    assert "received 4, answered 1" in finding.summary
    assert not _dns(findings, resolver)


def test_queries_lost_before_the_resolver_are_the_path(setup) -> None:
    client, resolver = setup[0], setup[1]
    rules = ("add table inet onrdns\n"
             "add chain inet onrdns in { type filter hook input priority 0; }\n"
             f"add rule inet onrdns in udp dport 53 udp length {LOST_UDP_LENGTH} drop\n")
    subprocess.run(["ip", "netns", "exec", resolver.netns, "nft", "-f", "-"], input=rules,
                   text=True, check=True)
    try:
        findings = _phase(setup, *["ok.test/A/udp/2"] * 3, *["lost.test/A/udp/1.2"] * 2,
                          settle=0.3)
    finally:
        resolver.exec("nft", "delete", "table", "inet", "onrdns", check=False)
    (finding,) = _dns(findings, client)
    assert finding.verdict == "dns_timeouts_lost_before_resolver", finding.summary
    assert "2 queries timed out" in finding.summary
    assert "received 3, answered 3" in finding.summary


def test_an_answer_after_the_client_timeout_is_case_1(setup) -> None:
    client = setup[0]
    findings = _phase(setup, "late.test/A/udp/1.2", "late.test/A/udp/3", settle=0.5)
    verdicts = [f.verdict for f in _dns(findings, client)]
    assert verdicts == ["dns_answer_after_client_timeout"], verdicts  # not also "timeouts"
    late = [e for f in _dns(findings, client) for e in f.evidence
            if e.signal == "netreceiver.pod.dns.late_answers"]
    assert sum(e.delta for e in late) == 2
    assert {dict(e.attributes)["dns.late.reason"] for e in late} == {"after_timeout",
                                                                      "no_socket"}


def test_servfail_names_the_resolver_that_sent_it(setup) -> None:
    client, resolver = setup[0], setup[1]
    findings = _phase(setup, "ok.test/A/udp/2", *["fail.test/A/udp/2"] * 2)
    (finding,) = _dns(findings, client)
    assert finding.verdict == "dns_server_failure"
    assert "2 SERVFAIL/REFUSED answers" in finding.summary
    assert [dict(r)["k8s.pod.uid"] for r in finding.related] == [resolver.uid]
