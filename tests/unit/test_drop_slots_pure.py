"""packetloss/slots.py without a kernel: which slots count, and totals that never go down.

The kernel side and the races it guards against are tested in
tests/integration/test_drop_slot.py; these pin the reader's rules one by one.
"""

from __future__ import annotations

from types import SimpleNamespace

from otel_netreceiver.bpf.probes.packetloss.slots import clamp, stable_slots
from otel_netreceiver.netns.bpfkeys import DEAD, LIVE, UNSURE


def _slot(seq: int, netns: int, pending: int, location: int = 7, reason: int = 3):
    return SimpleNamespace(seq=seq, pending=pending,
                           key=SimpleNamespace(location=location, netns=netns, reason=reason))


def test_only_slots_unchanged_across_the_hash_read_count() -> None:
    before = [_slot(4, 11, 5), _slot(6, 12, 2), _slot(3, 13, 9), _slot(8, 14, 0),
              _slot(2, 11, 1)]
    after = [_slot(4, 11, 8), _slot(8, 15, 1), _slot(3, 13, 9), _slot(8, 14, 0),
             _slot(2, 11, 1)]
    # CPU 0: same sequence, more pending since: the first read's count (the hash read after
    # it has none of it); CPU 1 flushed meanwhile; CPU 2 was mid-change (odd); CPU 3 empty;
    # CPU 4 holds the same key as CPU 0: summed
    assert stable_slots(before, after) == {(7, 11, 3): 6}


def test_totals_never_go_down_and_dead_namespaces_are_forgotten() -> None:
    status = {11: LIVE, 12: LIVE, 13: DEAD, 14: UNSURE}
    exported = {(7, 11, 3): 10, (7, 12, 3): 4, (7, 13, 3): 6, (7, 14, 3): 2}
    totals = clamp({(7, 11, 3): 9, (7, 15, 3): 1}, exported, status.get)
    # 11 read lower (a slot left out): kept at 10; 12 missing but alive: its last total;
    # 13 dead: gone from both; 14 unsure: not exported, remembered; 15 new
    assert totals == {(7, 11, 3): 10, (7, 15, 3): 1, (7, 12, 3): 4}
    assert exported == {(7, 11, 3): 10, (7, 12, 3): 4, (7, 14, 3): 2, (7, 15, 3): 1}
    assert clamp({(7, 11, 3): 12}, exported, status.get)[(7, 11, 3)] == 12  # exact again
