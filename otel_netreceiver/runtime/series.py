"""The series store's per-series state, and how a collection's blocks advance it.

A per-pod collector reports most of its series in blocks (model.Block: one line of
snmp, netstat or net/dev per namespace, keys fixed while the file's layout holds,
values replaced when the line moved). The store keeps one ``_BlockHeld`` per block
layout, holding the series' states in the block's order and the collection time
they share, so a block whose values tuple is last cycle's advances in one step (its
time), and one that moved walks only its own values. That replaced a Point object,
a store lookup by id and a timestamp write per value (BENCHMARKS.md, busy pods).

Each series state has a ``group``: the ``BlockHeld`` whose time and mark it shares,
or None for a series reported as a point, which keeps its own. The store reads a
series' last observation time as ``(state.group or state).time``. No reference
cycles: a holder dropped with its layout lets go of its states first, so the
series of a vanished pod are freed by reference counting, not by the cyclic
garbage collector.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from otel_netreceiver.model import (
    Attributes,
    Block,
    HistogramValue,
    Kind,
    MetricDef,
    Point,
    Scope,
    Value,
)

SeriesKey = tuple[MetricDef, Attributes]


class State:
    # seen: the update that last reported the series, a mark so the held dicts are kept
    # in place instead of rebuilt every cycle; pos: rises along the by_key order, which
    # tells cheaply whether a collection still lists its series in that order.
    __slots__ = ("baseline", "group", "moved", "point", "pos", "seen", "start", "time", "value")

    def __init__(self, start: int, time_ns: int, value: Value, point: Point | None, seen: int,
                 pos: int) -> None:
        self.start, self.time, self.value, self.point = start, time_ns, value, point
        self.moved = value != 0
        self.baseline = 0
        self.seen, self.pos = seen, pos
        self.group: BlockHeld | None = None


class BlockHeld:
    """The states of one block layout, in its order (None: refused by the cap, or a
    series already reported earlier in the cycle), the time and mark they share."""

    __slots__ = ("ascending", "complete", "first", "keys", "last", "seen", "states", "time",
                 "values")

    def __init__(self, keys: tuple[SeriesKey, ...]) -> None:
        self.keys = keys  # kept alive: the holder is found by id(keys)
        self.values: tuple[Value, ...] = ()
        self.states: list[State | None] = [None] * len(keys)
        self.time = self.seen = 0
        self.complete = False  # every key held here: the one-step path applies
        self.first = self.last = -1  # pos of the first and last state
        self.ascending = False  # the states' pos rise along the block

    def spans(self) -> None:
        """Work out first/last/ascending again (positions changed)."""
        states = self.states
        self.complete = all(s is not None and s.group is self for s in states)
        if self.complete and states:
            pos = [s.pos for s in states]  # type: ignore[union-attr]
            self.first, self.last = pos[0], pos[-1]
            self.ascending = all(a < b for a, b in pairwise(pos))


# a series not held yet: (key, value, its point or None, its block's holder or None, index)
Newcomer = tuple[SeriesKey, Value, Point | None, BlockHeld | None, int]


class Held:
    """One collector's series, by key (in export order) and by the id of their last Point.

    ``by_id`` holds exactly ``id(state.point)`` of every state in ``by_key`` reported as
    a point: each state keeps its point alive, so an id cannot be reused while its entry
    exists. Lookups still confirm ``state.point is point``. ``blocks`` holds each block
    layout's holder by ``id(keys)``, on the same terms.

    Most per-pod series are quiet counters, held back from every snapshot: ``loud``
    (the series a suppressing snapshot exports, in ``by_key`` order) and ``quiet``
    (the others, counted per metric) are worked out once and reused until a series
    comes, goes, moves place or first moves its value (``loud`` is then None).
    """

    __slots__ = ("blocks", "by_id", "by_key", "loud", "quiet", "stale")

    def __init__(self) -> None:
        self.by_key: dict[SeriesKey, State] = {}
        self.by_id: dict[int, State] = {}
        self.blocks: dict[int, BlockHeld] = {}
        self.loud: list[tuple[SeriesKey, State]] | None = None
        self.quiet: dict[str, int] = {}
        self.stale = False  # block spans to work out again after this update

    def split(self) -> list[tuple[SeriesKey, State]]:
        """The exported series; quiet per-pod counters that never moved are counted."""
        if self.loud is None:
            loud, quiet, counter, pod = [], defaultdict(int), Kind.COUNTER, Scope.POD
            for key, state in self.by_key.items():
                metric = key[0]
                if not state.moved and metric.kind is counter and metric.scope is pod:
                    quiet[metric.name] += 1
                else:
                    loud.append((key, state))
            self.loud, self.quiet = loud, dict(quiet)
        return self.loud


def went_down(kind: Kind, old: Value, new: Value) -> bool:
    if kind is Kind.COUNTER:
        return new < old  # type: ignore[operator]
    if isinstance(old, HistogramValue) and isinstance(new, HistogramValue):
        return new.count < old.count or new.bounds != old.bounds
    return False


def move(held: Held, state: State, kind: Kind, value: Value, before: int,
         restarted: bool) -> None:
    """A held series takes ``value``, observed after ``before``; a reset starts anew."""
    if restarted or went_down(kind, state.value, value):
        # the reset happened after the last good read; it was exported, keep it so
        if not state.moved:
            held.loud = None
        state.start, state.moved, state.baseline = before, True, 0
    elif not state.moved and value != 0:
        state.moved, state.baseline, held.loud = True, before, None
    state.value = value


def mark_blocks(held: Held, blocks: tuple[Block, ...], cycle: int, now: int,
                restarted: frozenset[tuple[str, Attributes]], newcomers: list[Newcomer]
                ) -> tuple[int, int, bool]:
    """Advance and mark the series of ``blocks``; return (marked, last pos, in order).

    A block whose layout is held complete takes one step (its values tuple unchanged)
    or walks its values; any other goes series by series (``_mark_each``).
    """
    marked, last, ordered = 0, -1, True
    get, seen_blocks = held.blocks.get, 0
    for block in blocks:
        keys = block.keys
        bh = get(id(keys))
        if bh is not None and bh.keys is keys:
            if bh.seen == cycle:  # the same block twice: the first observation wins
                newcomers += _refused_again(held, bh, block)
                continue
            if bh.complete and not restarted:
                if block.values is not bh.values:
                    before, values = bh.time, block.values
                    for state, key, value in zip(bh.states, keys, values, strict=True):
                        if value != state.value:  # type: ignore[union-attr]
                            move(held, state, key[0].kind, value, before, False)  # type: ignore[arg-type]
                    bh.values = values
                bh.time, bh.seen = now, cycle
                marked += len(keys)
                seen_blocks += 1
                if bh.first < last or not bh.ascending:
                    ordered = False
                last = bh.last
                continue
        else:
            bh = held.blocks[id(keys)] = BlockHeld(keys)
        marked_here, last, ordered = _mark_each(held, bh, block, cycle, restarted, newcomers,
                                                last, ordered)
        marked += marked_here
        seen_blocks += 1
        bh.time, bh.seen, bh.values = now, cycle, block.values
        held.stale = True
    if seen_blocks < len(held.blocks):
        _drop_unseen(held, cycle)
    return marked, last, ordered


def _refused_again(held: Held, bh: BlockHeld, block: Block) -> list[Newcomer]:
    """A block listed twice: the series the cap refused are refused (and counted) again,
    as they would be for a point listed twice."""
    return [(key, value, None, bh, index) for index, (key, value, state)
            in enumerate(zip(block.keys, block.values, bh.states, strict=True))
            if state is None and key not in held.by_key]


def _drop_unseen(held: Held, cycle: int) -> None:
    """Forget the holders of layouts not reported this cycle."""
    kept = {}
    for key, bh in held.blocks.items():
        if bh.seen == cycle:
            kept[key] = bh
        else:
            bh.states = []  # no cycle left between a dropped holder and its states
    held.blocks = kept


def _mark_each(held: Held, bh: BlockHeld, block: Block, cycle: int,
               restarted: frozenset[tuple[str, Attributes]], newcomers: list[Newcomer],
               last: int, ordered: bool) -> tuple[int, int, bool]:
    """A block series by series, as if its values came as points: a new layout, a cap
    that refused some, a series that moved in from another block or a restart flag."""
    by_key, by_id, marked = held.by_key.get, held.by_id, 0
    states: list[State | None] = [None] * len(block.keys)
    for index, (key, value) in enumerate(zip(block.keys, block.values, strict=True)):
        state = by_key(key)
        if state is None:
            newcomers.append((key, value, None, bh, index))
            continue
        group = state.group or state
        if state.seen == cycle or (group is not bh and group.seen == cycle):
            continue  # first observation of a series in a cycle wins
        before = group.time
        if group is not bh:  # it left another block, or was reported as a point
            if group is not state:
                group.complete = False  # type: ignore[union-attr]
            if state.point is not None:
                del by_id[id(state.point)]
                state.point = None
            state.group = bh
        move(held, state, key[0].kind, value, before,
             bool(restarted) and (key[0].name, key[1]) in restarted)
        state.seen, states[index] = cycle, state
        marked += 1
        if state.pos < last:
            ordered = False
        last = state.pos
    bh.states = states
    return marked, last, ordered
