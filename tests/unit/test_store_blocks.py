"""Series reported in blocks behave exactly as the same series reported as points.

Why: the per-pod collector hands its snmp, netstat and net/dev values to the store
as blocks (one line's keys and values), which the store advances a block at a time;
start times, resets, quiet hold-back with zero baselines, caps counting refusals,
vanished series and the export order must not notice. Each test runs one store fed
blocks and one fed the same values as points, and compares every snapshot.
"""

from __future__ import annotations

import random
import sys

from otel_netreceiver.model import Block, Collection, Kind, MetricDef, Point, Scope, attrs
from otel_netreceiver.runtime.store import SeriesStore

DROPS = MetricDef("t.pod.drops", Kind.COUNTER, "{packet}", "", scope=Scope.POD)
BYTES = MetricDef("t.pod.bytes", Kind.COUNTER, "By", "", scope=Scope.POD)
SOCKS = MetricDef("t.pod.sockets", Kind.GAUGE, "{socket}", "", scope=Scope.POD)
NODE = MetricDef("t.node.packets", Kind.COUNTER, "{packet}", "")
METRICS = (DROPS, BYTES, SOCKS, NODE)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def _view(store: SeriesStore) -> object:
    snapshot = store.snapshot()
    return ([(m.metric.name, [(p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.value,
                                p.baseline_time_unix_nano) for p in m.points])
             for m in snapshot.metrics], store.suppressed(), store.dropped(), snapshot)


def _as_points(blocks: list[Block]) -> list[Point]:
    return [Point(m, a, v) for b in blocks for (m, a), v in zip(b.keys, b.values, strict=True)]


class Pods:
    """Namespaces whose lines move, reset, change layout, come and go, at random."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_ns = 0
        self.lines: dict[int, list[Block]] = {}
        for _ in range(6):
            self._add()

    def _keys(self, ns: int, line: int, width: int) -> tuple:
        return tuple((METRICS[(line + i) % len(METRICS)], attrs(ns=ns, line=line, col=i))
                     for i in range(width))

    def _add(self) -> None:
        ns, self.next_ns = self.next_ns, self.next_ns + 1
        self.lines[ns] = [Block(self._keys(ns, line, self.rng.randint(1, 5)),
                                tuple(self.rng.choice((0, 0, 3)) for _ in range(5)))
                          for line in range(self.rng.randint(1, 3))]
        self.lines[ns] = [Block(b.keys, b.values[:len(b.keys)]) for b in self.lines[ns]]

    def _step(self, block: Block) -> Block:
        rng, roll = self.rng, self.rng.random()
        if roll < 0.5:
            return block  # nothing moved: the same object, as the memos hand back
        if roll < 0.55:  # the layout changed (an interface came, metadata arrived)
            width = rng.randint(1, 6)
            ns, line = (int(dict(block.keys[0][1])[k]) for k in ("ns", "line"))
            keys = self._keys(ns, line, width)
            old = dict(zip(block.keys, block.values, strict=True))
            return Block(keys, tuple(old.get(k, rng.choice((0, 1))) for k in keys))
        values = tuple(v if rng.random() < 0.5 else
                       rng.choice((v + rng.randint(1, 9), 0 if v else 2, max(v - 1, 0)))
                       for v in block.values)
        return Block(block.keys, values)

    def cycle(self) -> list[Block]:
        rng = self.rng
        for ns in list(self.lines):
            if rng.random() < 0.08:
                del self.lines[ns]
        if rng.random() < 0.4:
            self._add()
        order = list(self.lines)
        if rng.random() < 0.1:
            rng.shuffle(order)  # the namespace walk's order changed
        blocks = []
        for ns in order:
            self.lines[ns] = [self._step(b) for b in self.lines[ns]]
            blocks += self.lines[ns]
        if blocks and rng.random() < 0.1:
            blocks.append(rng.choice(blocks))  # the same block twice: the first wins
        return blocks


def test_blocks_and_points_give_the_same_snapshots_over_random_cycles() -> None:
    for seed in range(40):
        pods, clocks = Pods(seed), (Clock(), Clock())
        cap = 3 + seed % 25  # small caps refuse series, large ones never do
        stores = [SeriesStore(max_series_per_instrument=cap, clock=c) for c in clocks]
        for cycle in range(25):
            t = 2_000 + 1_000 * cycle
            blocks = pods.cycle()
            extra = [Point(NODE, attrs(loose="x"), cycle)]  # points alongside the blocks
            restarted = frozenset()
            if blocks and pods.rng.random() < 0.1:
                (m, a), = pods.rng.choice(blocks).keys[:1]
                restarted = frozenset({(m.name, a)})
            stores[0].update(Collection("podnet", tuple(extra), t, (), restarted,
                                        blocks=tuple(blocks)))
            stores[1].update(Collection("podnet", (*_as_points(blocks), *extra), t, (),
                                        restarted))
            for clock in clocks:
                clock.now = t + 1
            got, want = _view(stores[0]), _view(stores[1])
            assert got[:3] == want[:3], (seed, cycle)
            if pods.rng.random() < 0.7:  # exported: baselines acknowledged
                stores[0].ack_baselines(got[3])  # type: ignore[index]
                stores[1].ack_baselines(want[3])  # type: ignore[index]


def test_a_series_moving_between_a_block_and_a_point_keeps_its_start_and_state() -> None:
    store = SeriesStore(clock=Clock())
    key = (DROPS, attrs(ns=1))
    store.update(Collection("c", (), 2_000, blocks=(Block((key,), (5,)),)))
    store.update(Collection("c", (Point(DROPS, attrs(ns=1), 7),), 3_000))
    store.update(Collection("c", (), 4_000, blocks=(Block((key, (SOCKS, ())), (9, 1)),)))
    (series,) = store.snapshot().find("t.pod.drops").points  # type: ignore[union-attr]
    assert (series.start_time_unix_nano, series.time_unix_nano, series.value) == (1_000, 4_000, 9)
    store.update(Collection("c", (), 5_000, blocks=(Block((key,), (2,)),)))  # went down
    (series,) = store.snapshot().find("t.pod.drops").points  # type: ignore[union-attr]
    assert (series.start_time_unix_nano, series.value) == (4_000, 2)
    assert store.snapshot().find("t.pod.sockets") is None  # gone with its layout


def test_a_refused_block_series_is_counted_each_cycle_and_admitted_once_there_is_room() -> None:
    store = SeriesStore(max_series_per_instrument=1, clock=Clock())
    a, b = (SOCKS, attrs(ns=1)), (SOCKS, attrs(ns=2))
    both = Block((a, b), (1, 1))
    store.update(Collection("c", (), 2_000, blocks=(both,)))
    store.update(Collection("c", (), 3_000, blocks=(both,)))
    assert store.dropped() == {"t.pod.sockets": 2}
    store.update(Collection("c", (), 4_000, blocks=(Block((b,), (4,)),)))  # a went
    points = store.snapshot().find("t.pod.sockets").points  # type: ignore[union-attr]
    assert [(p.attributes, p.start_time_unix_nano, p.value) for p in points] == [
        (attrs(ns=2), 4_000, 4)]


def test_the_store_lets_go_of_block_series_whose_pod_is_gone() -> None:
    store = SeriesStore(clock=Clock())
    keys = ((DROPS, attrs(ns=1)),)
    refs = sys.getrefcount(keys)
    store.update(Collection("c", (), 2_000, blocks=(Block(keys, (1,)),)))
    assert sys.getrefcount(keys) > refs
    store.update(Collection("c", (), 3_000))
    assert sys.getrefcount(keys) == refs  # freed by reference counting, no cycle left
