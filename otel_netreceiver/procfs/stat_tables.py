"""Per-CPU hex tables: ``/proc/net/softnet_stat`` and ``/proc/net/stat/nf_conntrack``.

softnet_stat has no header; its columns are fixed by net/core/net-procfs.c
(softnet_seq_show): processed, dropped, time_squeeze, five zeros, cpu_collision
(0), received_rps, flow_limit_count, backlog length, cpu index, and on newer
kernels input and process queue lengths. nf_conntrack has a header line of
names (net/netfilter/nf_conntrack_standalone.c, ct_cpu_seq_show); columns
changed between versions, so it is read by name.
"""

from __future__ import annotations

from otel_netreceiver.procfs.errors import ParseError

SOFTNET_COLUMNS = ("processed", "dropped", "time_squeeze", "_3", "_4", "_5", "_6", "_7",
                   "cpu_collision", "received_rps", "flow_limit_count", "backlog_len", "cpu")


def _hex_row(line: str, source: str, lineno: int) -> list[int]:
    try:
        return [int(field, 16) for field in line.split()]
    except ValueError as exc:
        raise ParseError(source, lineno, f"not a hex number: {exc}") from exc


def parse_softnet_stat(text: str, source: str = "net/softnet_stat") -> list[dict[str, int]]:
    """One dict per CPU line; columns the running kernel does not print are absent."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        values = _hex_row(line, source, lineno)
        if len(values) < 3:
            raise ParseError(source, lineno, f"expected at least 3 columns, got {len(values)}")
        row = {name: v for name, v in zip(SOFTNET_COLUMNS, values, strict=False)
               if not name.startswith("_")}
        row.setdefault("cpu", lineno - 1)  # kernels before 5.10 print no cpu column
        rows.append(row)
    return rows


def parse_conntrack_stat(text: str, source: str = "net/stat/nf_conntrack") -> dict[str, int]:
    """Per-CPU rows summed by column name (``entries`` is global: taken from the first row)."""
    lines = text.splitlines()
    if not lines:
        raise ParseError(source, 1, "empty file")
    names = lines[0].split()
    totals = dict.fromkeys(names, 0)
    for lineno, line in enumerate(lines[1:], start=2):
        values = _hex_row(line, source, lineno)
        if len(values) != len(names):
            raise ParseError(source, lineno, f"{len(values)} values for {len(names)} columns")
        for name, value in zip(names, values, strict=True):
            totals[name] += value
    if len(lines) > 1:
        totals["entries"] = _hex_row(lines[1], source, 2)[names.index("entries")] \
            if "entries" in names else 0
    return totals
