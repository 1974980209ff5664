"""procfs parsers on real files from this machine, malformed input, and fuzzed input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.netdev import parse_net_dev
from otel_netreceiver.procfs.snmp import parse_snmp
from otel_netreceiver.procfs.snmp6 import parse_snmp6
from otel_netreceiver.procfs.sockstat import parse_sockstat
from otel_netreceiver.procfs.stat_tables import parse_conntrack_stat, parse_softnet_stat

NET = Path(__file__).parent.parent / "data" / "proc" / "1" / "net"
PARSERS = [parse_net_dev, parse_snmp, parse_snmp6, parse_sockstat, parse_softnet_stat,
           parse_conntrack_stat]


def test_snmp_and_netstat_real_files() -> None:
    snmp = parse_snmp((NET / "snmp").read_text())
    assert {"Ip", "Icmp", "Tcp", "Udp", "UdpLite"} <= set(snmp)
    assert snmp["Tcp"]["MaxConn"] == -1  # signed, per RFC 2012
    assert "InErrors" in snmp["Udp"] and "RcvbufErrors" in snmp["Udp"]
    netstat = parse_snmp((NET / "netstat").read_text())
    assert {"ListenOverflows", "ListenDrops", "TCPAbortOnTimeout"} <= set(netstat["TcpExt"])
    assert netstat["IpExt"]["InOctets"] > 0


def test_snmp_mismatched_counts_name_the_line() -> None:
    with pytest.raises(ParseError, match=r"snmp:2: Tcp: 2 names but 1 values"):
        parse_snmp("Tcp: A B\nTcp: 1\n", "snmp")
    with pytest.raises(ParseError, match=r"snmp:4: values line 'Udp' does not follow"):
        parse_snmp("Tcp: A\nTcp: 1\nTcp: B\nUdp: 2\n", "snmp")


def test_snmp6_sockstat_softnet_conntrack_real_files() -> None:
    assert "Ip6InReceives" in parse_snmp6((NET / "snmp6").read_text())
    sockstat = parse_sockstat((NET / "sockstat").read_text())
    assert {"inuse", "orphan", "tw", "alloc", "mem"} <= set(sockstat["TCP"])
    softnet = parse_softnet_stat((NET / "softnet_stat").read_text())
    assert [row["cpu"] for row in softnet] == list(range(len(softnet)))
    assert softnet[0]["processed"] == 0x120
    conntrack = parse_conntrack_stat((NET / "stat" / "nf_conntrack").read_text())
    assert {"found", "invalid", "insert_failed", "drop", "early_drop",
            "search_restart"} <= set(conntrack)


def test_conntrack_rows_sum_per_cpu_except_entries() -> None:
    text = "entries found drop\n0000000a 00000001 00000002\n0000000a 00000003 00000000\n"
    assert parse_conntrack_stat(text) == {"entries": 10, "found": 4, "drop": 2}


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("0123456789abcdef-: \n\tTcpUdp|xyz"), max_size=300))
def test_garbage_raises_only_parse_error(parser, text: str) -> None:
    with contextlib.suppress(ParseError):
        parser(text)


@pytest.mark.parametrize("name", ["snmp", "netstat", "snmp6", "sockstat", "softnet_stat"])
@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=4000))
def test_truncated_real_files_raise_only_parse_error(name: str, cut: int) -> None:
    parser = {"snmp": parse_snmp, "netstat": parse_snmp, "snmp6": parse_snmp6,
              "sockstat": parse_sockstat, "softnet_stat": parse_softnet_stat}[name]
    text = (NET / name).read_text()
    with contextlib.suppress(ParseError):
        parser(text[:cut])
