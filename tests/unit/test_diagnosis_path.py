"""Telling the path's faults apart: reordering is not loss, a full listener is not the path,
an MTU black hole is named, a burst is not diluted, and causes on another pod are linked."""

from __future__ import annotations

from otel_netreceiver.catalogue import metric
from otel_netreceiver.diagnosis.engine import diagnose, evaluate
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Question
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Point, attrs

S = 10**9
CLIENT = {"k8s.pod.uid": "uid-c", "k8s.pod.name": "client", "k8s.namespace.name": "shop",
          "netns.kind": "pod"}
SERVER = {**CLIENT, "k8s.pod.uid": "uid-s", "k8s.pod.name": "server"}
HOST = {"netns.kind": "host"}


def _p(name: str, value: float, labels: dict[str, str], **extra: str) -> Point:
    return Point(metric(f"netreceiver.{name}"), attrs({**labels, **extra}), value)


def _history(*cycles: list[Point], step: int = 1) -> History:
    history = History(3600.0, metric_names())
    for i, points in enumerate(cycles):
        history.record(points, (100 + i * step) * S)
    return history


def _verdicts(history: History, pod: str = "uid-c", end: int = 4000) -> list[str]:
    question = Question("", 90 * S, end * S, pod_uid=pod)
    return [f.verdict for f in evaluate(RULES, HistorySource(history), question)]


def _tcp(labels: dict[str, str], out: int, retrans: int, **more: int) -> list[Point]:
    points = [_p("tcp.out_segs", out, labels), _p("tcp.retrans_segs", retrans, labels)]
    return points + [_p(f"tcp.{name}", v, labels) for name, v in more.items()]


def test_spurious_retransmissions_are_delay_or_reordering_not_loss_nor_nat() -> None:
    # the delay fault as the kernel showed it: 88 retransmits, 67 DSACKed, PAWS rejects
    before = _tcp(CLIENT, 1000, 0, dsack_recv=0, sack_reorder=0, paws_estab=0, timeouts=0)
    after = _tcp(CLIENT, 2000, 88, dsack_recv=67, sack_reorder=147, paws_estab=5, timeouts=3)
    verdicts = _verdicts(_history(before, after))
    assert "path_delay_or_reordering" in verdicts
    assert not {"tcp_packet_loss", "paws_or_syn_recv_ack_skipped", "tcp_timeouts"} & set(verdicts)


def test_real_loss_with_few_duplicates_stays_loss() -> None:
    before = _tcp(SERVER, 1000, 0, dsack_recv=0)
    after = _tcp(SERVER, 1441, 133, dsack_recv=9)
    verdicts = _verdicts(_history(before, after), pod="uid-s")
    assert "tcp_packet_loss" in verdicts and "path_delay_or_reordering" not in verdicts


def test_a_burst_of_loss_is_not_diluted_by_a_quiet_hour_around_it() -> None:
    # 50 minutes of clean traffic, one minute losing 10 % of its segments, clean again
    cycles, out, retrans = [], 0, 0
    for minute in range(60):
        out += 1000
        retrans += 100 if minute == 30 else 0
        cycles.append(_tcp(CLIENT, out, retrans))
    history = _history(*cycles, step=60)
    assert 100 / 60_000 < 0.02  # the whole window's ratio would hide it
    assert "tcp_packet_loss" in _verdicts(history)


def test_syn_retransmits_to_a_full_listener_are_linked_to_the_server_pod() -> None:
    before = [*_tcp(CLIENT, 100, 0, syn_retrans=0),
              _p("tcp.listen_overflows", 0, SERVER), _p("tcp.listen_drops", 0, SERVER),
              _p("pod.packet.drops", 0, SERVER, **{"drop.reason": "NO_SOCKET"})]
    after = [*_tcp(CLIENT, 700, 600, syn_retrans=593),
             _p("tcp.listen_overflows", 5642, SERVER), _p("tcp.listen_drops", 5642, SERVER),
             _p("pod.packet.drops", 585, SERVER, **{"drop.reason": "NO_SOCKET"})]
    history = _history(before, after)
    assert "tcp_packet_loss" not in _verdicts(history)
    listing = type("Pods", (), {"pods": lambda self, q: [attrs(CLIENT), attrs(SERVER)]})()
    findings = diagnose(RULES, HistorySource(history), listing,
                        Question("", 90 * S, 4000 * S, every_pod=True))
    by_pod = {(dict(f.subject).get("k8s.pod.name"), f.verdict): f for f in findings}
    linked = by_pod[("client", "connect_retries_to_full_listener")]
    assert [dict(r)["k8s.pod.name"] for r in linked.related] == ["server"]
    assert ("server", "listen_overflow") in by_pod
    assert ("server", "packets_for_no_socket") not in by_pod  # the full queue explains them
    assert not [f for f in findings if not f.subject and f.verdict == "listen_overflow"]


def test_frag_failures_on_the_node_and_client_timeouts_are_an_mtu_black_hole() -> None:
    before = [*_tcp(CLIENT, 100, 0, timeouts=0), _p("ip.frag_fails", 0, HOST)]
    after = [*_tcp(CLIENT, 160, 40, timeouts=5), _p("ip.frag_fails", 47, HOST)]
    verdicts = _verdicts(_history(before, after))
    assert "mtu_black_hole" in verdicts
    assert not {"tcp_packet_loss", "tcp_timeouts"} & set(verdicts)
    # the same timeouts without fragmentation failures stay a loss finding
    plain = _history([*_tcp(CLIENT, 100, 0, timeouts=0)], [*_tcp(CLIENT, 160, 40, timeouts=5)])
    assert "mtu_black_hole" not in _verdicts(plain)


def test_a_queue_that_filled_and_drained_inside_the_window_is_seen() -> None:
    def queued(rx: int) -> list[Point]:
        return [_p("tcp.queued", rx, CLIENT, **{"network.io.direction": "receive"}),
                _p("tcp.queued", 0, CLIENT, **{"network.io.direction": "transmit"})]
    history = _history(queued(0), queued(512 * 1024), queued(0))
    assert "application_not_reading" in _verdicts(history)
