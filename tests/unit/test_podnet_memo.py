"""The per-namespace line memos: only changed lines are parsed, a line whose exported values
did not move keeps its Block object (the store's one-step path), and a malformed line costs
one cycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.podnet.memo import DevMemo, MibMemo, NetnsMemo
from otel_netreceiver.collectors.podnet.probes import _FIELDS
from otel_netreceiver.model import Block
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


def _flat(blocks: list[Block]) -> dict[tuple[str, tuple], object]:
    return {(m.name, a): v for b in blocks for (m, a), v in zip(b.keys, b.values, strict=True)}


def test_a_changed_line_renews_only_its_block_and_matches_a_full_parse() -> None:
    text = (NET / "snmp").read_text()
    memo = MibMemo()
    before = list(memo.update(text, "snmp", _FIELDS["snmp"], A))
    after = memo.update(_bump(text, "Udp"), "snmp", _FIELDS["snmp"], A)
    full = parse_snmp(_bump(text, "Udp"))
    assert _flat(after) == {(d.name, A): full[s][f] for s, f, d in _FIELDS["snmp"]
                            if f in full.get(s, {})}
    udp = {d for s, _, d in _FIELDS["snmp"] if s == "Udp"}
    assert len(before) == len(after) > 1
    for old, new in zip(before, after, strict=True):
        assert new.keys is old.keys  # the layout held: the store finds the block by it
        assert (new is old) == (old.keys[0][0] not in udp), old.keys[0][0].name


def test_a_line_that_moved_only_in_columns_not_exported_keeps_its_block() -> None:
    text = (NET / "snmp").read_text()
    memo = MibMemo()
    before = list(memo.update(text, "snmp", _FIELDS["snmp"], A))
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines)
                 if line.startswith("Tcp:") and line[4:].split()[0].lstrip("-").isdigit())
    names = lines[index - 1].split()[1:]
    exported = {f for s, f, _ in _FIELDS["snmp"] if s == "Tcp"}
    column = next(i for i, n in enumerate(names) if n not in exported)
    tokens = lines[index].split()
    tokens[column + 1] = str(int(tokens[column + 1]) + 1)
    lines[index] = " ".join(tokens)
    after = memo.update("\n".join(lines) + "\n", "snmp", _FIELDS["snmp"], A)
    assert all(new is old for new, old in zip(after, before, strict=True))
    assert memo.value("Tcp", names[column]) == int(tokens[column + 1])


def test_a_malformed_changed_line_is_reported_and_the_next_good_read_recovers() -> None:
    text = (NET / "snmp").read_text()
    memo = MibMemo()
    memo.update(text, "snmp", _FIELDS["snmp"], A)
    broken = "\n".join(line + " 7x" if line.startswith("Udp:") and line[5:6].isdigit() else line
                       for line in text.splitlines()) + "\n"
    with pytest.raises(ParseError, match=r"snmp:\d+: Udp:"):
        memo.update(broken, "snmp", _FIELDS["snmp"], A)
    memo.update(text, "snmp", _FIELDS["snmp"], A)
    notint = "\n".join(line.replace(" ", " x", 1) if line.startswith("Udp:") and
                       line[5:6].isdigit() else line for line in text.splitlines()) + "\n"
    with pytest.raises(ParseError, match=r"snmp:\d+: Udp: not an integer"):
        memo.update(notint, "snmp", _FIELDS["snmp"], A)
    again = memo.update(_bump(text, "Udp"), "snmp", _FIELDS["snmp"], A)
    assert _flat(again) == _flat(MibMemo().update(_bump(text, "Udp"), "snmp", _FIELDS["snmp"], A))


def test_an_interface_line_that_moved_renews_only_its_block() -> None:
    text = (NET / "dev").read_text()
    memo = DevMemo()
    before = list(memo.update(text, "dev", A, metric))
    moved = text.replace("  123456     789", "  123999     789", 1)  # lo receive bytes
    after = memo.update(moved, "dev", A, metric)
    renewed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old is not new]
    assert renewed == [0] and after[0].keys is before[0].keys
    assert after[0].values == (123999, *before[0].values[1:])
    assert dict(after[0].keys[0][1])["network.interface.name"] == "lo"


def test_a_parse_is_shared_while_the_text_is_the_same() -> None:
    memo, calls = NetnsMemo(A), []

    def parser(text: str) -> int:
        calls.append(text)
        return len(text)

    assert [memo.parse("sockstat", t, parser) for t in ("ab", "ab", "abc")] == [2, 2, 3]
    assert calls == ["ab", "abc"]


def test_a_malformed_interface_line_is_reported_and_the_memo_starts_over() -> None:
    text = (NET / "dev").read_text()
    memo = DevMemo()
    memo.update(text, "dev", A, metric)
    broken = text.replace("  123456     789", "  12x456     789", 1)
    with pytest.raises(ParseError, match=r"dev:3: expected 'iface: 16 numbers'"):
        memo.update(broken, "dev", A, metric)
    assert memo.by_interface == {}
    assert memo.update(text, "dev", A, metric)[0].values[:2] == (123456, 789)
