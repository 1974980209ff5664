"""Where the delay is: the path (RTT or its deviation high, stack and receive side clean),
the node's stack (softirq or kernel latency high too), or the pod's socket queue."""

from __future__ import annotations

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.podnet.tcprtt import rtt_points
from otel_netreceiver.diagnosis.engine import evaluate
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Question
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.model import HistogramValue, Point, attrs
from otel_netreceiver.sockdiag.tcpinfo import summarize

S = 10**9
POD = {"k8s.pod.uid": "uid-s", "k8s.pod.name": "server", "k8s.namespace.name": "shop",
       "netns.kind": "pod"}
LATENCIES = {"latency_in_node_stack", "latency_in_socket_queue", "path_jitter", "path_latency"}
BOUNDS = (0.001, 0.01, 0.1, 1.0)


def _rtt(srtt: float, rttvar: float, sockets: int = 4) -> list[Point]:
    """What probe tcprtt exports for a pod whose sockets all have this RTT and deviation."""
    a = attrs(POD)
    points = [Point(metric("netreceiver.tcp.rtt.sockets"), a, sockets)]
    for name, value in (("netreceiver.tcp.rtt", srtt), ("netreceiver.tcp.rtt.variation", rttvar)):
        for statistic in ("mean", "max"):
            points.append(Point(metric(name), attrs({**POD, "tcp.rtt.statistic": statistic}),
                                value))
    return [*points, Point(metric("netreceiver.tcp.rtt"),
                           attrs({**POD, "tcp.rtt.statistic": "min"}), srtt / 3)]


def _histogram(name: str, counts: tuple[int, ...], **labels: str) -> Point:
    return Point(metric(name), attrs(labels), HistogramValue(BOUNDS, counts, 0.0, sum(counts)))


def _verdicts(*cycles: list[Point]) -> set[str]:
    return set(_findings(*cycles)) & LATENCIES


def _findings(*cycles: list[Point]) -> dict:
    history = History(3600.0, metric_names())
    for i, points in enumerate(cycles):
        history.record(points, (100 + i) * S)
    question = Question("", 90 * S, 4000 * S, pod_uid="uid-s")
    return {f.verdict: f for f in evaluate(RULES, HistorySource(history), question)}


def test_a_clean_pod_on_a_near_path_has_no_latency_finding() -> None:
    # veth between two pods of a node: tens of microseconds; an idle peer's delayed ACKs 40 ms
    assert not _verdicts(_rtt(0.00003, 0.00001), _rtt(0.04, 0.02), _rtt(0.00005, 0.00002))


def test_a_jittery_path_is_path_jitter_with_its_numbers() -> None:
    # the delay fault as the kernel showed it: srtt ~330 ms, rttvar 70-105 ms
    findings = _findings(_rtt(0.0001, 0.00005), _rtt(0.33, 0.09), _rtt(0.33, 0.08))
    assert {"path_jitter"} == set(findings) & LATENCIES  # path_latency is explained by it
    shown = {(e.signal, dict(e.attributes).get("tcp.rtt.statistic")): e.delta
             for e in findings["path_jitter"].evidence}
    assert shown[("netreceiver.tcp.rtt.variation", "max")] == 0.09  # the peak of the window
    assert shown[("netreceiver.tcp.rtt", "max")] == 0.33
    assert shown[("netreceiver.tcp.rtt", "min")] == 0.11


def test_rtt_outliers_of_a_lossy_near_path_are_not_jitter() -> None:
    # 20 % frame loss on a veth path, as the kernel showed it: samples across recoveries
    # push the deviation above the smoothed RTT, which stays a few milliseconds
    assert not _verdicts(_rtt(0.0003, 0.0001), _rtt(0.009, 0.06), _rtt(0.004, 0.014))


def test_a_long_steady_path_is_path_latency_not_jitter() -> None:
    assert _verdicts(_rtt(0.25, 0.005), _rtt(0.26, 0.004)) == {"path_latency"}


def test_a_slow_softirq_puts_the_delay_in_the_nodes_stack_not_on_the_path() -> None:
    def cycle(slow: int) -> list[Point]:
        return [*_rtt(0.3, 0.1), _histogram("netreceiver.softirq.latency", (100, 0, 0, slow, 0),
                                            **{"softirq.vector": "NET_RX",
                                               "softirq.phase": "wait"})]
    assert _verdicts(cycle(0), cycle(50)) == {"latency_in_node_stack"}


def test_the_pods_own_kernel_latency_also_puts_it_in_the_stack() -> None:
    def cycle(slow: int) -> list[Point]:
        return [*_rtt(0.3, 0.1), _histogram("netreceiver.pod.kernel.latency",
                                            (100, 0, slow, 0, 0), **POD,
                                            **{"network.io.direction": "receive"})]
    assert _verdicts(cycle(0), cycle(50)) == {"latency_in_node_stack"}


def test_data_waiting_at_the_socket_is_the_socket_queue_and_not_the_path() -> None:
    def cycle(slow: int) -> list[Point]:
        return [*_rtt(0.3, 0.1), _histogram("netreceiver.pod.socket.latency",
                                            (100, 0, 0, slow, 0), **POD,
                                            **{"network.io.direction": "receive"})]
    assert _verdicts(cycle(0), cycle(50)) == {"latency_in_socket_queue"}


def test_an_unread_receive_queue_is_not_blamed_on_the_path_but_a_full_send_queue_is_no_alibi():
    def queued(direction: str, size: int) -> Point:
        return Point(metric("netreceiver.tcp.queued"),
                     attrs({**POD, "network.io.direction": direction}), size)
    unread = [[*_rtt(0.3, 0.1), queued("receive", n)] for n in (0, 200_000, 0)]
    assert not _verdicts(*unread) & {"path_jitter", "path_latency"}
    # bytes in flight over a long path fill the send queue by themselves
    in_flight = [[*_rtt(0.3, 0.1), queued("transmit", n)] for n in (0, 200_000, 0)]
    assert "path_jitter" in _verdicts(*in_flight)


def test_a_pod_without_established_sockets_exports_no_rtt_and_has_no_finding() -> None:
    points = rtt_points(summarize([]), attrs(POD))
    assert [p.metric.name for p in points] == ["netreceiver.tcp.rtt.sockets"]
    assert points[0].value == 0 and not _verdicts(points, points)
