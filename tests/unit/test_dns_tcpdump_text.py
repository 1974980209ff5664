"""tests/support/dns_tools.py reads tcpdump's text: lines captured from tcpdump 4.99 against
dnsmasq 2.90 (dig over UDP and TCP, NXDOMAIN, SERVFAIL, REFUSED, TC) must decode as tcpdump
printed them, or the kernel tests' cross-check would compare against nothing."""

from __future__ import annotations

from collections import Counter

from tests.support.dns_tools import Exchange, parse_tcpdump

CAPTURE = """\
22:44:34.861807 IP 10.252.1.2.55130 > 10.252.2.2.53: 58524+ [1au] A? ok.test. (48)
22:44:34.862445 IP 10.252.2.2.53 > 10.252.1.2.55130: 58524* 1/0/1 A 10.1.2.3 (52)
22:44:34.882973 IP 10.252.1.2.52859 > 10.252.2.2.53: 51903+ [1au] A? nope.test. (50)
22:44:34.883306 IP 10.252.2.2.53 > 10.252.1.2.52859: 51903 NXDomain 0/0/1 (38)
22:44:34.902949 IP 10.252.1.2.57261 > 10.252.2.2.53: 49250+ [1au] A? fail.test. (50)
22:44:34.904419 IP 10.252.2.2.53 > 10.252.1.2.57261: 49250 ServFail 0/0/0 (27)
22:44:34.923503 IP 10.252.1.2.53322 > 10.252.2.2.53: 41732+ [1au] A? dead.test. (50)
22:44:36.950911 IP 10.252.1.2.59459 > 10.252.2.2.53: 32768+ TXT? big.test. (26)
22:44:36.952058 IP 10.252.2.2.53 > 10.252.1.2.59459: 32768*| 0/0/0 (26)
22:44:36.952603 IP 10.252.1.2.40439 > 10.252.2.2.53: Flags [S], seq 2961487793, win 64660, \
options [mss 1220,sackOK,TS val 295410761 ecr 0,nop,wscale 10], length 0
22:44:36.953478 IP 10.252.1.2.40439 > 10.252.2.2.53: Flags [P.], seq 1:29, ack 1, win 64, \
options [nop,nop,TS val 295410762 ecr 354398398], length 28 60736+ TXT? big.test. (26)
22:44:36.953550 IP 10.252.2.2.53 > 10.252.1.2.40439: Flags [P.], seq 1:794, ack 29, win 64, \
options [nop,nop,TS val 354398398 ecr 295410762], length 793 60736* 1/0/0 TXT "aaa" (791)
22:44:36.984731 IP 10.252.1.2.33343 > 10.252.2.2.53: 14824+ [1au] A? other.example. (54)
22:44:36.984841 IP 10.252.2.2.53 > 10.252.1.2.33343: 14824 Refused 0/0/1 (48)
22:44:37.000902 IP 10.252.1.2.54039 > 10.252.2.2.53: 35918+ AAAA? ok.test. (25)
22:44:38.500932 IP 10.252.2.2.53 > 10.252.1.2.54039: 35918 NXDomain* 0/0/0 (25)
22:44:38.600000 IP 10.252.1.2.54040 > 10.252.2.2.53: 7 [b2&3=0x1900] [|domain]
22:44:38.700000 IP 10.252.1.2 > 10.252.2.2: ip-proto-17
"""
CAPTURE6 = """\
23:20:01.000001 IP6 ::1.41234 > ::1.53: 4660+ [1au] AAAA? ok.test. (36)
23:20:01.000101 IP6 ::1.53 > ::1.41234: 4660* 0/0/1 (36)
23:20:02.000001 IP6 fd00::2.41235 > fd00::1.53: 4661+ A? nope.test. (27)
23:20:02.000101 IP6 fd00::1.53 > fd00::2.41235: 4661 NXDomain* 0/0/0 (27)
"""


def test_ipv6_lines():
    seen = parse_tcpdump(CAPTURE6)
    assert [(s.client, s.response, s.rcode, s.qtype) for s in seen] == [
        (("::1", 41234), False, "", "AAAA"), (("::1", 41234), True, "NOERROR", ""),
        (("fd00::2", 41235), False, "", "A"), (("fd00::2", 41235), True, "NXDOMAIN", "")]


def test_tcpdump_lines_decode_to_what_tcpdump_printed():
    seen = parse_tcpdump(CAPTURE)
    assert len(seen) == 16  # the SYN and the bare fragment carry no DNS message
    exchange = Exchange.of(seen, timeout=1.0)
    assert exchange.queries == Counter({("A", "udp"): 5, ("other", "udp"): 1,
                                        ("other", "tcp"): 1, ("AAAA", "udp"): 1})
    assert exchange.responses == Counter({("NOERROR", "udp"): 2, ("NXDOMAIN", "udp"): 2,
                                          ("SERVFAIL", "udp"): 1, ("REFUSED", "udp"): 1,
                                          ("NOERROR", "tcp"): 1})
    assert exchange.truncated == 1
    assert exchange.unanswered == 1  # dead.test
    assert exchange.late == 1  # the AAAA answer 1.5 s after its query
    assert exchange.undecoded == 1  # tcpdump could not decode the last query
    assert seen[0].client == ("10.252.1.2", 55130) and seen[1].client == ("10.252.1.2", 55130)
    assert [s.name for s in seen if not s.response][:3] == ["ok.test.", "nope.test.",
                                                            "fail.test."]
