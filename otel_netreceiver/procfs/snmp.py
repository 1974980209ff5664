"""``/proc/<pid>/net/snmp`` and ``/proc/<pid>/net/netstat``: header/value line pairs.

Both files print a line of names and a line of values per protocol, each
prefixed with the protocol ("Tcp:", "TcpExt:"); see net/ipv4/proc.c
(snmp_seq_show_tcp_udp, netstat_seq_show). Values are signed: Tcp MaxConn is -1.
"""

from __future__ import annotations

from otel_netreceiver.procfs.errors import ParseError


def check_pairs(lines: list[str], source: str) -> None:
    """Header and values lines come in pairs; a lone header is a cut-short file."""
    if len(lines) % 2:
        raise ParseError(source, len(lines), "odd number of lines: a header lacks its values")


def parse_snmp_pair(header: str, values: str, source: str = "net/snmp",
                    lineno: int = 2) -> tuple[str, dict[str, int]]:
    """One protocol's (header, values) lines → (protocol, {counter name: value}).

    Separate from parse_snmp so that a caller who kept last cycle's lines parses
    only the pairs whose values line changed (``lineno`` is the values line's).
    """
    head_proto, _, names = header.partition(":")
    value_proto, _, numbers_text = values.partition(":")
    if not head_proto or head_proto != value_proto:
        raise ParseError(source, lineno, f"values line {value_proto!r} does not follow "
                         f"header {head_proto!r}")
    keys, numbers = names.split(), numbers_text.split()
    if len(keys) != len(numbers):
        raise ParseError(source, lineno, f"{head_proto}: {len(keys)} names but "
                         f"{len(numbers)} values")
    try:
        return head_proto, {k: int(v) for k, v in zip(keys, numbers, strict=True)}
    except ValueError as exc:
        raise ParseError(source, lineno, f"{head_proto}: not an integer: {exc}") from exc


def parse_snmp(text: str, source: str = "net/snmp") -> dict[str, dict[str, int]]:
    """{protocol: {counter name: value}} for every header/value pair of lines."""
    lines = text.splitlines()
    check_pairs(lines, source)
    return dict(parse_snmp_pair(lines[i], lines[i + 1], source, i + 2)
                for i in range(0, len(lines), 2))
