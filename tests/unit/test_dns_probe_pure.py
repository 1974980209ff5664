"""The dns probe's pure parts: C rendering from configuration, map rows → points."""

from __future__ import annotations

import ipaddress
import struct

from otel_netreceiver.bpf.probes.dns.reader import (
    LATE,
    NDOTS_GAP_NS,
    QUERY,
    RESPONSE,
    TIMEOUT,
    UNPARSED,
    dns_points,
)
from otel_netreceiver.bpf.probes.dns.spec import classifiers, service_codes, services
from otel_netreceiver.catalogue import metric
from otel_netreceiver.config.schema import DnsProbeConfig
from otel_netreceiver.model import attrs


def _labels(netns: int):  # type: ignore[no-untyped-def]
    return attrs({"netns.inode": str(netns), "netns.kind": "pod"})


def test_service_codes_carry_resolver_class_and_link_local_service() -> None:
    config = DnsProbeConfig(cluster_dns=["10.100.0.10"], vpc_cidrs=["10.0.0.0/16"])
    codes = service_codes(services(config))
    ip = ipaddress.ip_address
    assert codes[ip("10.100.0.10")] == 1  # cluster_dns, not link-local
    assert codes[ip("169.254.20.10")] == 2 | 4 << 4  # node_local: answered on the node
    assert codes[ip("169.254.170.23")] == 5 << 4  # pod identity agent: on the node too
    assert codes[ip("169.254.169.253")] == 3 | 1 << 4  # amazon resolver, amazon_dns
    assert codes[ip("10.0.0.2")] == 3 | 1 << 4  # VPC+2 is the same resolver
    assert codes[ip("169.254.169.254")] == 2 << 4  # imds: link-local, not a resolver
    assert codes[ip("fd00:ec2::123")] == 3 << 4


def test_rendered_compares_use_the_words_the_program_loads() -> None:
    macros = classifiers(DnsProbeConfig(ports=[53, 5353], imds=["169.254.169.254"],
                                        amazon_dns=[], time_sync=[], node_local_dns=[],
                                        pod_identity=[]))
    assert macros["DNS_PORT(p)"] == "((p) == 53 || (p) == 5353)"
    # the program loads the 4 address bytes in network order as a little-endian u32
    word = struct.unpack("<I", bytes([169, 254, 169, 254]))[0]
    assert macros["SERVICE_V4(a)"] == f"((u8)((a) == {word}U ? 32 : 0))"
    assert macros["SERVICE_V6(w)"] == "((u8)(0))"


def test_the_kernel_drop_reason_for_a_gone_socket_comes_from_its_format() -> None:
    from otel_netreceiver.bpf.probes.dns.spec import defines
    from otel_netreceiver.bpf.tracefs import TracepointFormat
    from otel_netreceiver.config.schema import EbpfConfig

    fmt = TracepointFormat("kfree_skb", (), {"reason": {2: "NO_SOCKET", 3: "SOCKET_CLOSE"}})
    made = defines({("skb", "kfree_skb"): fmt}, EbpfConfig())
    assert made["NO_SOCKET_REASON"] == 2 and made["PENDING_MAX"] == 16384
    assert "NO_SOCKET_REASON" not in defines({}, EbpfConfig())


def test_rows_become_per_pod_points_with_names_never_addresses() -> None:
    counts = [(7, QUERY, 0, 1, 0, 0, 5), (7, QUERY, 0, 1, 1, 0, 2),
              (7, RESPONSE, 0, 1, 3, 0, 2), (7, RESPONSE, 0, 1, 9, 0, 1),
              (7, TIMEOUT, 0, 1, 0, 0, 1), (7, LATE, 0, 1, 1, 0, 1),
              (7, UNPARSED, 0, 0, 5, 0, 4)]
    points = dns_points(counts, [(7, 1, 20, 3, 3_000_000)], {(7, 1): 2}, _labels)
    by = {(p.metric.name, tuple((k, v) for k, v in p.attributes if k.startswith(
        ("dns.", "linklocal.")))): p.value for p in points}
    assert by[("netreceiver.pod.dns.queries", (("dns.question.type", "A"),
                                               ("dns.resolver.class", "cluster_dns"),
                                               ("dns.role", "client")))] == 5
    assert by[("netreceiver.pod.dns.responses", (("dns.resolver.class", "cluster_dns"),
                                                 ("dns.response.code", "NXDOMAIN"),
                                                 ("dns.role", "client")))] == 2
    assert by[("netreceiver.pod.dns.responses", (("dns.resolver.class", "cluster_dns"),
                                                 ("dns.response.code", "other"),
                                                 ("dns.role", "client")))] == 1
    # the kernel's timeouts and the sweep's add up
    assert by[("netreceiver.pod.dns.timeouts", (("dns.resolver.class", "cluster_dns"),))] == 3
    assert by[("netreceiver.pod.dns.late_answers", (("dns.late.reason", "no_socket"),
                                                    ("dns.resolver.class", "cluster_dns")))] == 1
    assert by[("netreceiver.pod.dns.unparsed", (("dns.unparsed.reason", "bad_pointer"),))] == 4
    latency = by[("netreceiver.pod.dns.latency", (("dns.resolver.class", "cluster_dns"),))]
    assert latency.count == 3 and abs(latency.sum - 0.003) < 1e-9  # type: ignore[union-attr]
    for point in points:  # every attribute is in the catalogue's row for the metric
        assert {k for k, _ in point.attributes} <= set(metric(point.metric.name).attributes)


def test_the_dns_probe_is_never_compiled_into_another_probes_object() -> None:
    """It attaches cgroup programs after loading (ProbeSpec.finish), so it stays alone on
    skb:kfree_skb, and packetloss and tcptwrcv still share one object."""
    from otel_netreceiver.bpf.compose import groups
    from otel_netreceiver.bpf.probes import PROBES

    specs = [PROBES["packetloss"], PROBES["dns"], PROBES["tcptwrcv"]]
    assert [[s.name for s in g] for g in groups(specs)] == [["packetloss", "tcptwrcv"],
                                                            ["dns"]]


def test_the_reader_forgets_ndots_runs_after_the_gap_the_kernel_uses() -> None:
    """The kernel ends a run it meets past NDOTS_GAP_NS; the reader forgets the others
    after the same gap (a plain hash: nothing evicts them)."""
    import re
    from importlib import resources

    text = resources.files("otel_netreceiver.bpf.probes.dns").joinpath("counting.c").read_text()
    found = re.search(r"#define NDOTS_GAP_NS (\d+)ULL", text)
    assert found is not None and int(found[1]) == NDOTS_GAP_NS
