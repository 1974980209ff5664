"""Series store: cumulative start times, resets, vanished series, the cardinality cap."""

from __future__ import annotations

import sys

from otel_netreceiver.model import (
    Collection,
    HistogramValue,
    Kind,
    MetricDef,
    Point,
    Scope,
    attrs,
)
from otel_netreceiver.runtime.store import SeriesStore

PKTS = MetricDef("t.packets", Kind.COUNTER, "{packet}", "test counter")
LEVEL = MetricDef("t.level", Kind.GAUGE, "1", "test gauge")
LAT = MetricDef("t.latency", Kind.HISTOGRAM, "s", "test histogram")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def _collect(store: SeriesStore, t: int, *points: Point, name: str = "c",
             restarted: frozenset = frozenset()) -> None:
    store.update(Collection(name, points, t, (), restarted))


def _points(store: SeriesStore, metric: MetricDef) -> dict:
    series = store.snapshot().find(metric.name)
    return {p.attributes: p for p in series.points} if series else {}


def test_first_cycle_series_start_at_agent_start_later_ones_when_seen() -> None:
    clock = Clock()
    store = SeriesStore(clock=clock)
    _collect(store, 2_000, Point(PKTS, attrs(i="a"), 5))
    _collect(store, 3_000, Point(PKTS, attrs(i="a"), 7), Point(PKTS, attrs(i="b"), 1))
    pts = _points(store, PKTS)
    assert pts[attrs(i="a")].start_time_unix_nano == 1_000
    assert pts[attrs(i="a")].value == 7
    assert pts[attrs(i="b")].start_time_unix_nano == 3_000


def test_counter_going_down_starts_a_new_series_start_time() -> None:
    store = SeriesStore(clock=Clock())
    _collect(store, 2_000, Point(PKTS, attrs(i="a"), 50))
    _collect(store, 3_000, Point(PKTS, attrs(i="a"), 3))
    point = _points(store, PKTS)[attrs(i="a")]
    assert point.value == 3
    assert point.start_time_unix_nano == 2_000  # the reset happened after the last good read


def test_restarted_flag_restarts_even_when_value_grows() -> None:
    store = SeriesStore(clock=Clock())
    _collect(store, 2_000, Point(PKTS, attrs(i="a"), 5))
    _collect(store, 3_000, Point(PKTS, attrs(i="a"), 9),
             restarted=frozenset({("t.packets", attrs(i="a"))}))
    assert _points(store, PKTS)[attrs(i="a")].start_time_unix_nano == 2_000


def test_gauge_going_down_is_not_a_reset() -> None:
    store = SeriesStore(clock=Clock())
    _collect(store, 2_000, Point(LEVEL, (), 5))
    _collect(store, 3_000, Point(LEVEL, (), 1))
    assert _points(store, LEVEL)[()].start_time_unix_nano == 1_000


def test_histogram_count_going_down_is_a_reset() -> None:
    store = SeriesStore(clock=Clock())
    h1 = HistogramValue((0.1,), (3, 1), 0.5, 4)
    h2 = HistogramValue((0.1,), (1, 0), 0.01, 1)
    _collect(store, 2_000, Point(LAT, (), h1))
    _collect(store, 3_000, Point(LAT, (), h2))
    assert _points(store, LAT)[()].start_time_unix_nano == 2_000


def test_vanished_series_disappear_in_the_next_snapshot() -> None:
    store = SeriesStore(clock=Clock())
    _collect(store, 2_000, Point(PKTS, attrs(pod="x"), 1), Point(PKTS, attrs(pod="y"), 1))
    _collect(store, 3_000, Point(PKTS, attrs(pod="y"), 2))
    assert set(_points(store, PKTS)) == {attrs(pod="y")}
    # a returning series is new: it starts when seen again, not at the old start
    _collect(store, 4_000, Point(PKTS, attrs(pod="x"), 1), Point(PKTS, attrs(pod="y"), 2))
    assert _points(store, PKTS)[attrs(pod="x")].start_time_unix_nano == 4_000


def test_cap_keeps_held_series_and_counts_refused_ones() -> None:
    store = SeriesStore(max_series_per_instrument=2, clock=Clock())
    _collect(store, 2_000, Point(PKTS, attrs(i="a"), 1), Point(PKTS, attrs(i="b"), 1))
    # a newcomer listed first must not push out a held series
    _collect(store, 3_000, Point(PKTS, attrs(i="c"), 1), Point(PKTS, attrs(i="a"), 2),
             Point(PKTS, attrs(i="b"), 2))
    assert set(_points(store, PKTS)) == {attrs(i="a"), attrs(i="b")}
    assert store.dropped() == {"t.packets": 1}
    # once a series goes away, the newcomer gets its place
    _collect(store, 4_000, Point(PKTS, attrs(i="c"), 1), Point(PKTS, attrs(i="a"), 3))
    assert set(_points(store, PKTS)) == {attrs(i="a"), attrs(i="c")}


def test_cap_is_per_instrument_across_collectors() -> None:
    store = SeriesStore(max_series_per_instrument=1, clock=Clock())
    _collect(store, 2_000, Point(PKTS, attrs(i="a"), 1), name="one")
    _collect(store, 2_000, Point(PKTS, attrs(i="b"), 1), Point(LEVEL, (), 1), name="two")
    assert set(_points(store, PKTS)) == {attrs(i="a")}
    assert _points(store, LEVEL)
    assert store.dropped() == {"t.packets": 1}


def test_remove_collector_frees_its_series_and_slots() -> None:
    store = SeriesStore(max_series_per_instrument=1, clock=Clock())
    _collect(store, 2_000, Point(PKTS, attrs(i="a"), 1), name="one")
    store.remove_collector("one")
    assert store.snapshot().find("t.packets") is None
    _collect(store, 3_000, Point(PKTS, attrs(i="b"), 1), name="two")
    assert set(_points(store, PKTS)) == {attrs(i="b")}


def test_the_same_point_object_again_is_still_restarted_when_flagged() -> None:
    store = SeriesStore(clock=Clock())
    point = Point(PKTS, attrs(i="a"), 5)
    _collect(store, 2_000, point)
    _collect(store, 3_000, point)
    _collect(store, 4_000, point, restarted=frozenset({("t.packets", attrs(i="a"))}))
    got = _points(store, PKTS)[attrs(i="a")]
    assert (got.start_time_unix_nano, got.time_unix_nano, got.value) == (3_000, 4_000, 5)


def test_a_point_object_back_after_its_series_went_is_a_new_series() -> None:
    store = SeriesStore(max_series_per_instrument=1, clock=Clock())
    point = Point(PKTS, attrs(i="a"), 5)
    _collect(store, 2_000, point)
    _collect(store, 3_000, Point(PKTS, attrs(i="b"), 1))  # a went: b takes the only slot
    assert set(_points(store, PKTS)) == {attrs(i="b")}
    _collect(store, 4_000, point)
    got = _points(store, PKTS)[attrs(i="a")]
    assert (got.start_time_unix_nano, got.time_unix_nano) == (4_000, 4_000)
    assert store.dropped() == {}


def test_a_point_object_listed_twice_is_one_series_and_takes_one_slot() -> None:
    store = SeriesStore(max_series_per_instrument=2, clock=Clock())
    point = Point(PKTS, attrs(i="a"), 5)
    _collect(store, 2_000, point, point, Point(PKTS, attrs(i="b"), 1))
    _collect(store, 3_000, point, point)  # b went, even though two points came
    assert [p.attributes for p in store.snapshot().find("t.packets").points] == [attrs(i="a")]
    _collect(store, 4_000, point, point, Point(PKTS, attrs(i="c"), 1))
    assert set(_points(store, PKTS)) == {attrs(i="a"), attrs(i="c")}
    assert store.dropped() == {}


def test_first_observation_wins_even_when_the_old_point_object_follows() -> None:
    store = SeriesStore(clock=Clock())
    old = Point(PKTS, attrs(i="a"), 50)
    _collect(store, 2_000, old)
    _collect(store, 3_000, Point(PKTS, attrs(i="a"), 3), old)  # reset; the stale copy loses
    got = _points(store, PKTS)[attrs(i="a")]
    assert (got.value, got.start_time_unix_nano) == (3, 2_000)
    _collect(store, 4_000, old)  # back to the old object: a plain step up, no new reset
    got = _points(store, PKTS)[attrs(i="a")]
    assert (got.value, got.start_time_unix_nano) == (50, 2_000)


def test_export_order_follows_the_collection_held_series_before_newcomers() -> None:
    store = SeriesStore(clock=Clock())
    a, b, c = (Point(LEVEL, attrs(i=i), 1) for i in "abc")
    _collect(store, 2_000, a, b)
    _collect(store, 3_000, c, b, a)  # newcomers go after the series already held
    assert [p.attributes for p in store.snapshot().find("t.level").points] == [
        attrs(i="b"), attrs(i="a"), attrs(i="c")]
    _collect(store, 4_000, c, b, a)
    assert [p.attributes for p in store.snapshot().find("t.level").points] == [
        attrs(i="c"), attrs(i="b"), attrs(i="a")]


def test_quiet_counters_held_back_across_cycles_show_once_they_move() -> None:
    pod = MetricDef("t.pod.drops", Kind.COUNTER, "{packet}", "", scope=Scope.POD)
    store = SeriesStore(clock=Clock())
    quiet = [Point(pod, attrs(i=str(i)), 0) for i in range(3)]
    for t in (2_000, 3_000):
        _collect(store, t, *quiet, Point(LEVEL, (), t))
        assert store.snapshot().find("t.pod.drops") is None
        assert store.suppressed() == {"t.pod.drops": 3}
    quiet[1] = Point(pod, attrs(i="1"), 2)
    _collect(store, 4_000, *quiet, Point(LEVEL, (), 1))
    assert [(p.attributes, p.value) for p in store.snapshot().find("t.pod.drops").points] == [
        (attrs(i="1"), 2)]
    assert store.suppressed() == {"t.pod.drops": 2}
    _collect(store, 5_000, *quiet, Point(LEVEL, (), 1),
             restarted=frozenset({("t.pod.drops", attrs(i="2"))}))
    assert [(p.attributes, p.value) for p in store.snapshot().find("t.pod.drops").points] == [
        (attrs(i="1"), 2), (attrs(i="2"), 0)]  # a restart is a new series: it is sent
    assert store.suppressed() == {"t.pod.drops": 1}
    store.set_suppress_quiet(False)
    assert len(store.snapshot().find("t.pod.drops").points) == 3
    assert store.suppressed() == {}


def test_the_store_lets_go_of_points_whose_series_are_gone() -> None:
    store = SeriesStore(clock=Clock())
    gone = [Point(PKTS, attrs(i=str(i)), i) for i in range(3)]
    refs = [sys.getrefcount(p) for p in gone]
    _collect(store, 2_000, *gone)
    store.snapshot()
    _collect(store, 3_000, Point(PKTS, attrs(i="1"), 7))
    store.snapshot()
    assert [sys.getrefcount(p) for p in gone] == refs
