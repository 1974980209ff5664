"""``top``'s pure parts: rates between two store snapshots, the keys, the layout."""

from __future__ import annotations

import pytest

from otel_netreceiver.catalogue import metric
from otel_netreceiver.model import Collection, HistogramValue, Point, Scope, attrs
from otel_netreceiver.runtime.store import SeriesStore
from otel_netreceiver.top.columns import COLUMNS, Column, Source
from otel_netreceiver.top.rows import NODE_ROW, fmt, quantile, top_view
from otel_netreceiver.top.state import DOWN, ENTER, ESC, ViewState, decode_keys, press
from otel_netreceiver.top.tracker import TopTracker
from otel_netreceiver.top.view import pick_columns, visible_rows

S = 1_000_000_000


def pod(uid: str, name: str = "", **extra: str) -> dict[str, str]:
    labels = {"netns.kind": "pod", "netns.inode": "4026530000", "k8s.pod.uid": uid, **extra}
    if name:
        labels.update({"k8s.pod.name": name, "k8s.namespace.name": "shop"})
    return labels


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def drops(uid: str, reason: str, value: int, name: str = "") -> Point:
    return Point(metric("netreceiver.pod.packet.drops"),
                 attrs(pod(uid, name), **{"drop.reason": reason}), value)


def packets(uid: str, direction: str, value: int, iface: str = "eth0") -> Point:
    return Point(metric("netreceiver.pod.network.packets"),
                 attrs(pod(uid), **{"network.io.direction": direction,
                                    "network.interface.name": iface}), value)


def snapshots(*cycles: tuple[Point, ...], collector: str = "c", step: int = 10):
    """Feed a real store one collection per cycle, ``step`` seconds apart; snapshot each."""
    clock = Clock()
    store = SeriesStore(clock=clock)
    out = []
    for index, points in enumerate(cycles, 1):
        clock.now = index * step * S
        store.update(Collection.of(collector, points, clock.now))
        out.append(store.snapshot())
    return out


def by_key(view):
    return {row.id.key: row for row in view.rows}


def test_rates_are_changes_over_the_interval_and_the_top_reason_is_the_busiest():
    first, second = snapshots(
        (drops("a", "NO_SOCKET", 100), drops("a", "TCP_CSUM", 5), packets("a", "receive", 50),
         packets("a", "receive", 1000, iface="lo")),
        (drops("a", "NO_SOCKET", 300), drops("a", "TCP_CSUM", 105),
         packets("a", "receive", 150), packets("a", "receive", 1010, iface="lo")))
    rows = by_key(top_view(first, second))
    assert rows["a"].value("drops") == pytest.approx((200 + 100) / 10)
    assert dict(rows["a"].tops)["drops"] == "NO_SOCKET"
    assert rows["a"].value("pkts_in") == pytest.approx(10.0)  # lo left out
    details = [(d.label, d.per_second) for d in rows["a"].details]
    assert details[0] == ("netreceiver.pod.packet.drops{drop.reason=NO_SOCKET}", 20.0)
    assert [rate for _, rate in details] == [20.0, 10.0, 10.0, 1.0]


def test_a_series_that_first_moves_from_zero_counts_from_zero():
    # the store holds back per-pod counters that never moved, then sends them with a zero
    # baseline: the whole first value is the change
    first, second = snapshots((drops("q", "NO_SOCKET", 0),), (drops("q", "NO_SOCKET", 40),))
    assert not first.find("netreceiver.pod.packet.drops")  # held back as quiet
    assert by_key(top_view(first, second))["q"].value("drops") == pytest.approx(4.0)


def test_a_reset_counts_since_the_restart_never_negative():
    first, second = snapshots((drops("r", "X", 1000),), (drops("r", "X", 30),))
    assert by_key(top_view(first, second))["r"].value("drops") == pytest.approx(3.0)


def test_an_old_series_missing_from_the_previous_snapshot_is_not_its_lifetime_rate():
    clock = Clock()
    store = SeriesStore(clock=clock, suppress_quiet=False)
    clock.now = 10 * S
    store.update(Collection.of("c", [drops("old", "X", 7)], clock.now))
    previous = store.snapshot(collectors=["none"])  # a snapshot without the series
    clock.now = 20 * S
    store.update(Collection.of("c", [drops("old", "X", 5_000)], clock.now))
    rows = by_key(top_view(previous, store.snapshot()))
    assert rows["old"].value("drops") == 0.0 and rows["old"].details == ()


def test_fallback_sources_only_when_the_primary_is_absent_from_the_snapshot():
    dropped = metric("netreceiver.pod.network.dropped")
    iface = {"network.io.direction": "receive", "network.interface.name": "eth0"}
    cycles = [(Point(dropped, attrs(pod("f"), **iface), n),) for n in (10, 30)]
    without_ebpf = by_key(top_view(*snapshots(*cycles)))
    assert without_ebpf["f"].value("drops") == pytest.approx(2.0)
    with_ebpf = by_key(top_view(*snapshots(*[(*c, drops("g", "X", 1 + i))
                                             for i, c in enumerate(cycles)])))
    assert with_ebpf["f"].value("drops") == 0.0  # the eBPF drops of f: none
    assert with_ebpf["g"].value("drops") == pytest.approx(0.1)


def test_no_source_for_the_row_scope_is_none_and_measured_quiet_metrics_are_zero():
    view = top_view(*snapshots((drops("a", "X", 1),), (drops("a", "X", 2),)))
    rows = by_key(view)
    assert rows["a"].value("softirq_p99") is None  # node-scope only
    assert rows["a"].value("listen_ovf") is None  # nothing says it is measured
    measured = {"netreceiver.tcp.listen_overflows": Scope.POD}
    rows = by_key(top_view(*snapshots((drops("a", "X", 1),), (drops("a", "X", 2),)),
                           measured=measured))
    assert rows["a"].value("listen_ovf") == 0.0


def test_optional_columns_appear_only_with_their_series():
    keys = [c.key for c in top_view(*snapshots((), ())).columns]
    assert "dns_timeouts" not in keys and "drops" in keys
    extra = Column("peer_x", "x/s", "1/s", (Source("netreceiver.pod.packet.drops",
                                                   (("drop.reason", "X"),)),), optional=True)
    view = top_view(*snapshots((drops("a", "X", 1),), (drops("a", "X", 21),)),
                    columns=(*COLUMNS, extra))
    assert "peer_x" in [c.key for c in view.columns]
    assert by_key(view)["a"].value("peer_x") == pytest.approx(2.0)


def test_histogram_p99_of_the_interval_only():
    lat = metric("netreceiver.softirq.latency")
    labels = attrs({"softirq.vector": "NET_RX", "softirq.phase": "schedule"})
    bounds = (0.001, 0.002, 0.004)
    old = HistogramValue(bounds, (0, 0, 1000, 0), 4.0, 1000)  # slow, before the interval
    new = HistogramValue(bounds, (98, 2, 1000, 0), 4.1, 1100)
    view = top_view(*snapshots((Point(lat, labels, old),), (Point(lat, labels, new),)))
    node = next(r for r in view.rows if r.id == NODE_ROW)
    assert node.value("softirq_p99") == pytest.approx(2.0)  # ms: bucket of the 99th of 100
    assert quantile([], 0.99) is None


def test_findings_attach_to_their_pod():
    gauge = metric("netreceiver.diagnosis.findings")
    finding = Point(gauge, attrs({"k8s.pod.uid": "a", "diagnosis.rule": "dns.x",
                                  "diagnosis.verdict": "dns_throttled"}), 1)
    rows = by_key(top_view(*snapshots((finding,), (finding,))))
    assert rows["a"].findings == (("dns.x", "dns_throttled"),)


def test_out_of_order_snapshots_are_refused():
    first, second = snapshots((), ())
    with pytest.raises(ValueError, match="out of order"):
        top_view(second, first)


def test_tracker_warms_up_then_serves_the_last_pair():
    tracker = TopTracker("n1", 15.0)
    assert tracker.document()["warming_up"] is True
    first, second, third = snapshots((drops("a", "X", 1),), (drops("a", "X", 11),),
                                     (drops("a", "X", 111),))
    tracker.observe(first)
    tracker.observe(second)
    assert tracker.document()["rows"][-1]["values"]["drops"] == pytest.approx(1.0)
    tracker.observe(third)
    doc = tracker.document()
    row = next(r for r in doc["rows"] if r["key"] == "a")
    assert doc["node"] == "n1" and row["values"]["drops"] == pytest.approx(10.0)


def test_keys_sort_filter_select_details_pause_quit():
    columns = ["pkts_in", "drops", "retrans"]
    state = ViewState(sort="drops")
    assert press(state, ">", columns, 5).sort == "retrans"
    assert press(state, "<", columns, 5).sort == "pkts_in"
    assert press(state, "1", columns, 5).sort == "pkts_in"
    assert press(state, "r", columns, 5).descending is False
    typing = state
    for key in ["/", *"web", ENTER]:
        typing = press(typing, key, columns, 5)
    assert typing.filter == "web" and not typing.editing
    assert press(press(typing, "/", columns, 5), ESC, columns, 5).filter == ""
    moved = press(press(state, DOWN, columns, 5), DOWN, columns, 5)
    assert moved.selected == 2
    assert press(moved, ENTER, columns, 5).details
    assert not press(press(moved, ENTER, columns, 5), ESC, columns, 5).details
    assert press(state, ENTER, columns, 0).details is False  # nothing to show
    assert press(state, "p", columns, 5).paused and press(state, "q", columns, 5).quit


def test_decode_keys_splits_escape_sequences():
    assert decode_keys(b"\x1b[Bq/\r\x1b") == [DOWN, "q", "/", ENTER, ESC]


def test_visible_rows_filter_by_namespace_or_name_and_sort():
    doc = {"rows": [
        {"kind": "node", "key": "node", "name": "(node)", "namespace": "", "values": {}},
        {"kind": "pod", "key": "u1", "name": "web-1", "namespace": "shop",
         "values": {"drops": 1.0}},
        {"kind": "pod", "key": "u2", "name": "db-0", "namespace": "data",
         "values": {"drops": 9.0}},
        {"kind": "host", "key": "host", "name": "(host netns)", "namespace": "",
         "values": {"drops": None}}]}
    assert [r["key"] for r in visible_rows(doc, ViewState())] == ["u2", "u1", "host"]
    assert [r["key"] for r in visible_rows(doc, ViewState(filter="SHOP/"))] == ["u1"]
    assert next(r["key"] for r in visible_rows(doc, ViewState(descending=False))) == "u1"
    doc["rows"][1]["details"] = [{"series": "netreceiver.tcp.in_segs", "per_second": 1.0}]
    hidden = press(ViewState(), "i", [], 3)
    assert [r["key"] for r in visible_rows(doc, hidden)] == ["u1"]  # only what moved


def test_narrow_terminals_keep_the_sorted_column_and_the_most_important_ones():
    columns = [{"key": c.key, "priority": c.priority} for c in COLUMNS]
    narrow = [c["key"] for c in pick_columns(columns, 80, "txlat_p99", 20)]
    assert "txlat_p99" in narrow and "drops" in narrow and len(narrow) == 5
    assert len(pick_columns(columns, 250, "drops", 28)) == len(columns)


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (0, "0"), (0.25, "0.25"),
                                             (12345, "12.3k"), (4.5e6, "4.5M"), (150, "150")])
def test_fmt_fits_a_cell(value, text):
    assert fmt(value) == text and len(fmt(value)) <= 9


def test_no_agent_says_so_and_how_to_start_one(tmp_path, capsys):
    import io

    from otel_netreceiver.top.app import once

    assert once(str(tmp_path / "api.sock"), "text", "drops", io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "no agent is running here" in err and "otel-netreceiver run -c CONFIG" in err


def test_bad_refresh_is_named(capsys):
    from otel_netreceiver.cli import main

    assert main(["top", "--refresh", "0.05", "--socket", "/nonexistent"]) == 2
    assert "--refresh must be at least 0.2 seconds" in capsys.readouterr().err


def test_the_peers_probe_points_fill_the_cross_zone_and_internet_columns():
    """Rows from the peers reader (bpf/probes/peers/reader.py) as the collector emits them:
    x-zone is other_zone packets both ways, internet likewise; other classes feed neither."""
    from otel_netreceiver.bpf.probes.peers.reader import peer_points
    from otel_netreceiver.peers.classes import PeerClass

    def cycle(n: int) -> tuple[Point, ...]:
        rows = [(1, int(PeerClass.OTHER_ZONE), 2, 1, 10 * n, 1000 * n),
                (1, int(PeerClass.OTHER_ZONE), 2, 0, 5 * n, 500 * n),
                (1, int(PeerClass.INTERNET), 0, 1, 3 * n, 300 * n),
                (1, int(PeerClass.SAME_ZONE), 1, 1, 1000 * n, 1000 * n)]
        return tuple(peer_points(rows, {1: "az-1", 2: "az-2"}.get,
                                 lambda netns: attrs(pod("a", "web-1"))))

    view = top_view(*snapshots(cycle(1), cycle(3)))
    assert {"cross_zone", "internet"} <= {c.key for c in view.columns}
    row = by_key(view)["a"]
    assert row.value("cross_zone") == pytest.approx((30 - 10 + 15 - 5) / 10)
    assert row.value("internet") == pytest.approx((9 - 3) / 10)
