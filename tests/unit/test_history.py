"""The change-point history: increases over windows, resets, pruning, memory per movement."""

from __future__ import annotations

from otel_netreceiver.catalogue import metric
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Block, Collection, Point, attrs

S = 10**9
RCVBUF = metric("netreceiver.udp.rcvbuf_errors")
POD_A = attrs({"k8s.pod.uid": "a", "netns.kind": "pod"})
POD_B = attrs({"k8s.pod.uid": "b", "netns.kind": "pod"})


def _history(window: float = 60.0) -> History:
    return History(window, {RCVBUF.name})


def _feed(history: History, t: int, **values: int) -> None:
    history.record([Point(RCVBUF, POD_A if k == "a" else POD_B, v) for k, v in values.items()],
                   t * S)


def _only(rows):
    assert len(rows) == 1, rows
    return rows[0]


def test_increase_over_a_window_uses_the_observations_around_it():
    h = _history()
    for t, value in ((100, 5), (101, 5), (102, 9), (103, 9), (104, 12)):
        _feed(h, t, a=value)
    row = _only(h.increases(RCVBUF.name, lambda a: True, 101 * S + 1, 104 * S))
    assert row.delta == 7  # 12 at 104 minus 5, the value at 101.x
    assert row.start_unix_nano == 101 * S + 1 and row.end_unix_nano == 104 * S
    # a window that ends before the last change sees only what happened before
    assert _only(h.increases(RCVBUF.name, lambda a: True, 100 * S, 103 * S)).delta == 4


def test_quiet_series_cost_one_sample_however_often_observed():
    h = _history()
    for t in range(100, 160):
        _feed(h, t, a=3, b=3 + (t >= 150))
    assert h.series_count() == 2
    assert h.sample_count() == 3  # a: one; b: two (3, then 4 at t=150)


def test_a_counter_that_went_down_counts_from_zero_after_the_reset():
    h = _history()
    _feed(h, 100, a=50)
    _feed(h, 101, a=2)  # the namespace was recreated
    assert _only(h.increases(RCVBUF.name, lambda a: True, 99 * S, 102 * S)).delta == 2


def test_series_first_seen_inside_the_window_use_their_first_value_as_baseline():
    h = _history()
    _feed(h, 110, a=4)
    _feed(h, 112, a=6)
    row = _only(h.increases(RCVBUF.name, lambda a: True, 100 * S, 115 * S))
    assert row.delta == 2 and row.start_unix_nano == 110 * S


def test_match_selects_series_and_unwanted_metrics_are_not_kept():
    h = _history()
    _feed(h, 100, a=1, b=1)
    _feed(h, 101, a=1, b=8)
    other = metric("netreceiver.udp.in_datagrams")
    h.record([Point(other, POD_A, 5)], 101 * S)
    rows = h.increases(RCVBUF.name, lambda a: dict(a)["k8s.pod.uid"] == "b", 99 * S, 102 * S)
    assert [r.delta for r in rows] == [7]
    assert h.increases(other.name, lambda a: True, 0, 200 * S) == []


def test_pruning_forgets_old_samples_but_keeps_the_baseline_and_drops_gone_series():
    h = _history(window=10.0)
    for t in range(100, 130):
        _feed(h, t, a=t, **({"b": 1} if t < 105 else {}))  # b's pod went away at 105
    assert h.series_count() == 1  # b unseen for a whole window: forgotten
    assert h.sample_count() <= 13  # 10 s of a's changes plus its baseline
    row = _only(h.increases(RCVBUF.name, lambda a: True, 120 * S, 129 * S))
    assert row.delta == 9


def test_a_collection_s_blocks_are_recorded_as_its_points_would_be():
    """The per-pod collector hands most values over in blocks (model.Block)."""
    by_points, by_blocks = _history(), _history()
    for t, a, b in ((100, 5, 1), (101, 8, 1), (102, 8, 4)):
        points = (Point(RCVBUF, POD_A, a), Point(RCVBUF, POD_B, b))
        by_points.update(Collection("podnet", points, t * S))
        block = Block(((RCVBUF, POD_A),), (a,))
        by_blocks.update(Collection("podnet", (Point(RCVBUF, POD_B, b),), t * S,
                                    blocks=(block,)))
    for h in (by_points, by_blocks):
        rows = h.increases(RCVBUF.name, lambda a: True, 100 * S, 102 * S)
        assert sorted((dict(r.attributes)["k8s.pod.uid"], r.delta) for r in rows) == [
            ("a", 3), ("b", 3)]
    assert by_blocks.series_count() == by_points.series_count() == 2
