"""``/proc/<pid>/net/sockstat``: "PROTO: key value ..." (net/ipv4/proc.c, sockstat_seq_show)."""

from __future__ import annotations

from otel_netreceiver.procfs.errors import ParseError


def parse_sockstat(text: str, source: str = "net/sockstat") -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        proto, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) % 2:
            raise ParseError(source, lineno, f"expected 'PROTO: key value ...', got {line!r}")
        try:
            result[proto.strip()] = {fields[i]: int(fields[i + 1])
                                     for i in range(0, len(fields), 2)}
        except ValueError as exc:
            raise ParseError(source, lineno, f"not an integer: {exc}") from exc
    return result
