"""The console summary: rates since the previous summary, by pod, only what moved."""

from __future__ import annotations

import io

from otel_netreceiver.catalogue import metric
from otel_netreceiver.export.console import ConsoleExporter
from otel_netreceiver.model import Collection, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore

S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _pod(uid: str, name: str) -> dict[str, str]:
    return {"netns.kind": "pod", "netns.inode": "1", "k8s.pod.uid": uid,
            "k8s.pod.name": name, "k8s.namespace.name": "shop"}


def _cycle(busy: int, idle: int) -> list[Point]:
    segs, rcvbuf = metric("netreceiver.tcp.in_segs"), metric("netreceiver.udp.rcvbuf_errors")
    return [Point(segs, attrs(_pod("b", "busy")), busy), Point(rcvbuf, attrs(_pod("b", "busy")),
                                                               busy // 10),
            Point(segs, attrs(_pod("i", "idle")), idle),
            Point(rcvbuf, attrs(_pod("i", "idle")), 0)]


def _run(totals: bool) -> list[str]:
    clock, out = Clock(), io.StringIO()
    store = SeriesStore(clock=clock)
    exporter = ConsoleExporter("n1", stream=out, totals=totals)
    for index, (busy, idle) in enumerate(((1000, 7), (3000, 7)), 1):
        clock.now = index * 10 * S
        store.update(Collection.of("podnet", _cycle(busy, idle), clock.now))
        assert exporter.export(store.snapshot()).ok
    return out.getvalue().splitlines()


def test_rates_by_pod_only_what_moved_and_quiet_series_in_one_line():
    lines = _run(totals=False)
    second = lines[lines.index(next(x for x in lines[1:] if x.startswith("──"))):]
    text = "\n".join(second)
    assert "rates over the last 10s" in text
    busy = next(x for x in second if x.lstrip().startswith("shop/busy"))
    assert "udp buf/s 20.00" in busy  # (300 - 100) / 10 s
    assert "netreceiver.tcp.in_segs 200/s" in text
    assert "shop/idle" not in text  # it did not move: not even its name
    assert second[-1].startswith("  quiet: 1 of 2 namespaces did not move;")  # one line
    assert "totals:" not in text and len(second) == 5  # header, interval, busy x2, quiet


def test_totals_are_a_flag_away():
    lines = _run(totals=True)
    text = "\n".join(lines)
    assert "  totals:" in text
    assert "netreceiver.tcp.in_segs" in text and "3,000" in text  # the cumulative value


def test_totals_are_a_keypress_away_between_summaries():
    clock, out = Clock(), io.StringIO()
    store = SeriesStore(clock=clock)
    exporter = ConsoleExporter("n1", stream=out, keys=True)
    assert not exporter.print_totals()  # nothing exported yet: says so
    assert "no summary yet" in out.getvalue()
    for index, busy in enumerate((1000, 3000), 1):
        clock.now = index * 10 * S
        store.update(Collection.of("podnet", _cycle(busy, 7), clock.now))
        exporter.export(store.snapshot())
    assert "press Enter" in out.getvalue()  # the first summary says how
    before = len(out.getvalue().splitlines())
    assert exporter.print_totals()
    printed = out.getvalue().splitlines()[before:]
    assert printed[0].startswith("── totals on n1 at ")
    text = "\n".join(printed)
    assert "3,000" in text and "7" in text  # cumulative values, the idle pod's too
    assert "rates over" not in text and "(+" not in text  # totals only, no changes
