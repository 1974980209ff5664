"""The per-namespace line memos: only changed lines are parsed, unchanged values keep their
Point object (the store's identity fast path), and a malformed line costs one cycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.podnet.memo import DevMemo, MibMemo, NetnsMemo
from otel_netreceiver.collectors.podnet.probes import _FIELDS
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.snmp import parse_snmp

NET = Path(__file__).parent.parent / "data" / "proc" / "1" / "net"
A = (("netns.inode", "4026532001"), ("netns.kind", "pod"))


def _bump(text: str, protocol: str, by: int = 5) -> str:
    """Raise every value on ``protocol``'s values line (its second line)."""
    lines, seen = text.splitlines(), 0
    for i, line in enumerate(lines):
        if line.startswith(f"{protocol}:"):
            seen += 1
            if seen == 2:
                head, _, values = line.partition(":")
                lines[i] = f"{head}: " + " ".join(str(int(v) + by) for v in values.split())
    return "\n".join(lines) + "\n"


def test_a_changed_line_renews_only_its_points_and_matches_a_full_parse() -> None:
    text = (NET / "snmp").read_text()
    memo = MibMemo()
    before = list(memo.update(text, "snmp", _FIELDS["snmp"], A))
    after = memo.update(_bump(text, "Udp"), "snmp", _FIELDS["snmp"], A)
    full = parse_snmp(_bump(text, "Udp"))
    assert [p.value for p in after] == [full[s][f] for s, f, _ in _FIELDS["snmp"]
                                        if f in full.get(s, {})]
    for old, new, (section, _, _) in zip(before, after, _FIELDS["snmp"], strict=False):
        assert (new is old) == (section != "Udp"), (section, new)


def test_a_malformed_changed_line_is_reported_and_the_next_good_read_recovers() -> None:
    text = (NET / "snmp").read_text()
    memo = MibMemo()
    memo.update(text, "snmp", _FIELDS["snmp"], A)
    broken = "\n".join(line + " 7x" if line.startswith("Udp:") and line[5:6].isdigit() else line
                       for line in text.splitlines()) + "\n"
    with pytest.raises(ParseError, match=r"snmp:\d+: Udp:"):
        memo.update(broken, "snmp", _FIELDS["snmp"], A)
    again = memo.update(_bump(text, "Udp"), "snmp", _FIELDS["snmp"], A)
    assert [p.value for p in again] == [p.value for p in MibMemo().update(
        _bump(text, "Udp"), "snmp", _FIELDS["snmp"], A)]


def test_an_interface_line_that_moved_renews_only_the_values_that_moved() -> None:
    text = (NET / "dev").read_text()
    memo = DevMemo()
    before = list(memo.update(text, "dev", A, metric))
    moved = text.replace("  123456     789", "  123999     789", 1)  # lo receive bytes
    after = memo.update(moved, "dev", A, metric)
    renewed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old is not new]
    assert renewed == [0] and after[0].value == 123999
    assert dict(after[0].attributes)["network.interface.name"] == "lo"


def test_a_parse_is_shared_while_the_text_is_the_same() -> None:
    memo, calls = NetnsMemo(A), []

    def parser(text: str) -> int:
        calls.append(text)
        return len(text)

    assert [memo.parse("sockstat", t, parser) for t in ("ab", "ab", "abc")] == [2, 2, 3]
    assert calls == ["ab", "abc"]
