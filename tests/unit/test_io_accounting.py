"""Per-pod I/O counters stay monotonic when processes exit or pids are reused."""

from __future__ import annotations

from pathlib import Path

from otel_netreceiver.collectors.podnet.io_accounting import IoAccounting, parse_proc_io


def _io(root: Path, pid: int, syscw: int, wchar: int = 0) -> None:
    (root / str(pid)).mkdir(exist_ok=True)
    (root / str(pid) / "io").write_text(
        f"rchar: 0\nwchar: {wchar}\nsyscr: 0\nsyscw: {syscw}\nread_bytes: 0\n")


def _cycle(acct: IoAccounting, inode: int, pids: tuple[int, ...]) -> dict[str, int]:
    acct.begin_cycle()
    totals = acct.update(inode, pids)
    acct.end_cycle()
    return totals


def test_parse_real_layout() -> None:
    assert parse_proc_io("rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\nread_bytes: 20480\n") == {
        "rchar": 6976, "wchar": 0, "syscr": 10, "syscw": 0}


def test_exited_process_keeps_its_share_and_reused_pid_counts_from_zero(tmp_path) -> None:
    acct = IoAccounting(str(tmp_path))
    _io(tmp_path, 10, syscw=100)
    _io(tmp_path, 11, syscw=5)
    assert _cycle(acct, 1, (10, 11))["syscw"] == 105  # first sight: history since start
    _io(tmp_path, 10, syscw=150)
    assert _cycle(acct, 1, (10, 11))["syscw"] == 155
    (tmp_path / "10" / "io").unlink()  # pid 10 exited
    assert _cycle(acct, 1, (11,))["syscw"] == 155  # no drop
    _io(tmp_path, 11, syscw=3)  # pid 11 reused by a new process with fewer calls
    assert _cycle(acct, 1, (11,))["syscw"] == 158


def test_namespaces_not_seen_are_forgotten(tmp_path) -> None:
    acct = IoAccounting(str(tmp_path))
    _io(tmp_path, 20, syscw=7)
    _cycle(acct, 2, (20,))
    _cycle(acct, 3, ())
    assert acct._totals == {3: {"syscr": 0, "syscw": 0, "rchar": 0, "wchar": 0}}
    assert acct._last == {}
