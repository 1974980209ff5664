"""``/proc/<pid>/net/snmp6``: one "Name value" pair per line (net/ipv6/proc.c)."""

from __future__ import annotations

from otel_netreceiver.procfs.errors import ParseError


def parse_snmp6(text: str, source: str = "net/snmp6") -> dict[str, int]:
    result: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise ParseError(source, lineno, f"expected 'Name value', got {line.strip()!r}")
        result[fields[0]] = int(fields[1])
    return result
