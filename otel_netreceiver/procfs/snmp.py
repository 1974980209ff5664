"""``/proc/<pid>/net/snmp`` and ``/proc/<pid>/net/netstat``: header/value line pairs.

Both files print a line of names and a line of values per protocol, each
prefixed with the protocol ("Tcp:", "TcpExt:"); see net/ipv4/proc.c
(snmp_seq_show_tcp_udp, netstat_seq_show). Values are signed: Tcp MaxConn is -1.
"""

from __future__ import annotations

from otel_netreceiver.procfs.errors import ParseError


def parse_snmp(text: str, source: str = "net/snmp") -> dict[str, dict[str, int]]:
    """{protocol: {counter name: value}} for every header/value pair of lines."""
    result: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    if len(lines) % 2:
        raise ParseError(source, len(lines), "odd number of lines: a header lacks its values")
    for i in range(0, len(lines), 2):
        head_proto, _, names = lines[i].partition(":")
        value_proto, _, values = lines[i + 1].partition(":")
        if not head_proto or head_proto != value_proto:
            raise ParseError(source, i + 2, f"values line {value_proto!r} does not follow "
                             f"header {head_proto!r}")
        keys, numbers = names.split(), values.split()
        if len(keys) != len(numbers):
            raise ParseError(source, i + 2, f"{head_proto}: {len(keys)} names but "
                             f"{len(numbers)} values")
        try:
            result[head_proto] = {k: int(v) for k, v in zip(keys, numbers, strict=True)}
        except ValueError as exc:
            raise ParseError(source, i + 2, f"{head_proto}: not an integer: {exc}") from exc
    return result
