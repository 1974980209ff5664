"""Drawing a ``/v1/top`` document with rich: the table, the details pane, the header.

Everything here works on the JSON document (not the agent's dataclasses), so what a
script gets from ``--format json`` and what the screen shows cannot drift apart. Widths
are decided here, not left to rich's shrinking: a column that does not fit is left out
(lowest priority first; the sorted one always stays) and the header says how many, so an
80x24 terminal shows fewer columns, never squeezed numbers.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from otel_netreceiver.top.rows import fmt
from otel_netreceiver.top.state import ViewState

NUMBER_WIDTH = 9
REASON_WIDTH = 18  # the top drop reason beside the drops number, when the screen is wide
CHROME_LINES = 5  # header, column titles (two lines), rule, footer


def _label(row: dict[str, Any]) -> str:
    if row["kind"] == "pod" and row.get("namespace"):
        return f"{row['namespace']}/{row['name']}"
    return row["name"]


def visible_rows(doc: dict[str, Any], state: ViewState) -> list[dict[str, Any]]:
    """Every row but the node's, filtered (substring of namespace/name, any case, or the
    start of a pod UID from 8 characters on: shorter hex would match names by chance) and
    sorted by the chosen column (rows without a value last), name breaking ties."""
    wanted = state.filter.lower()
    rows = [r for r in doc.get("rows", []) if r["kind"] != "node"
            and (not wanted or wanted in _label(r).lower()
                 or (len(wanted) >= 8 and r["key"].lower().startswith(wanted)))
            and not (state.hide_idle and not r.get("details") and not r.get("findings"))]
    sign = -1 if state.descending else 1
    def order(row: dict[str, Any]) -> tuple:
        value = row["values"].get(state.sort)
        return (value is None, sign * (value or 0.0), _label(row))
    return sorted(rows, key=order)


def pick_columns(columns: list[dict[str, Any]], width: int, sort: str,
                 name_width: int) -> list[dict[str, Any]]:
    """The columns that fit ``width`` next to the name, by priority, in table order."""
    budget = width - name_width - 1
    chosen: set[str] = set()
    for col in sorted(columns, key=lambda c: (c["key"] != sort, c["priority"])):
        need = NUMBER_WIDTH + 1
        if need > budget:
            break
        chosen.add(col["key"])
        budget -= need
    return [c for c in columns if c["key"] in chosen]


def _table(doc: dict[str, Any], state: ViewState, width: int, height: int
           ) -> tuple[Table, int, int]:
    name_width = 28 if width >= 120 else 20
    reasons = width >= 100  # the top drop reason is worth more than a rarely moving column
    columns = pick_columns(doc.get("columns", []), width - (REASON_WIDTH + 1) * reasons,
                           state.sort, name_width)
    table = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False,
                  header_style="bold", expand=False)
    table.add_column("pod", width=name_width, no_wrap=True, overflow="ellipsis")
    for col in columns:
        marker = ("↓" if state.descending else "↑") if col["key"] == state.sort else ""
        table.add_column(f"{col['title']}{marker}", width=NUMBER_WIDTH, justify="right",
                         overflow="fold")
    if reasons and any(c["key"] == "drops" for c in columns):
        table.add_column("top drop reason", width=REASON_WIDTH, no_wrap=True,
                         overflow="ellipsis")
    node = next((r for r in doc.get("rows", []) if r["kind"] == "node"), None)
    rows = visible_rows(doc, state)
    room = max(1, height - CHROME_LINES - (2 if node else 0))
    start = max(0, state.selected - room + 1)
    for row in ([node] if node else []):
        table.add_row(*_cells(row, columns, reasons, False), style="bold", end_section=True)
    for index, row in enumerate(rows[start:start + room], start):
        selected = index == state.selected
        table.add_row(*_cells(row, columns, reasons, selected),
                      style="reverse" if selected else None)
    return table, len(doc.get("columns", [])) - len(columns), len(rows)


def _cells(row: dict[str, Any], columns: list[dict[str, Any]], reasons: bool,
           selected: bool) -> list[str]:
    cells = [("> " if selected else "  ") + _label(row)]
    cells += [fmt(row["values"].get(c["key"])) for c in columns]
    if reasons and any(c["key"] == "drops" for c in columns):
        cells.append(row.get("tops", {}).get("drops", ""))
    return cells


def _header(doc: dict[str, Any], state: ViewState, hidden: int, shown: int,
            error: str) -> Text:
    stamp = time.strftime("%H:%M:%S", time.localtime(doc.get("time_unix_nano", 0) / 1e9))
    parts = [f"otel-netreceiver top  {doc.get('node', '')}",
             f"{doc.get('interval_s', 0):.3g}s rates at {stamp}", f"{shown} rows"]
    if state.filter or state.editing:
        parts.append(f"filter: {state.filter}{'_' if state.editing else ''}")
    if hidden:
        parts.append(f"+{hidden} cols (widen)")
    if state.hide_idle:
        parts.append("idle hidden")
    if state.paused:
        parts.append("PAUSED")
    text = Text("  ".join(parts), style="bold")
    if error:
        text.append(f"\nAGENT UNAVAILABLE, showing its last answer: {error}", style="bold red")
    if doc.get("warming_up"):
        text.append(f"\n{doc.get('message', 'waiting for the first rates')}")
    return text


FOOTER = "q quit  </> sort  r reverse  / filter  i idle  enter details  p pause"


def render(doc: dict[str, Any], state: ViewState, width: int, height: int,
           error: str = "") -> RenderableType:
    """The whole screen: header, then the table or the details pane, then the keys."""
    if state.details:
        rows = visible_rows(doc, state)
        row = rows[min(state.selected, len(rows) - 1)] if rows else None
        return Group(_header(doc, state, 0, len(rows), error),
                     details(row, width, height - 3, doc.get("interval_s", 0)),
                     Text("enter/esc back  p pause  q quit", style="dim"))
    banner = (2 if error else 0) + (1 if doc.get("warming_up") else 0)  # may wrap once
    table, hidden, shown = _table(doc, state, width, height - banner)
    return Group(_header(doc, state, hidden, shown, error), table, Text(FOOTER, style="dim"))


def details(row: dict[str, Any] | None, width: int, height: int,
            interval: float) -> RenderableType:
    """One row's active findings and every series that moved, busiest first, one line each
    (a long series name is cut at the screen's edge rather than wrapped)."""
    if row is None:
        return Text("no row selected (the filter matches nothing)")
    lines = Text()
    lines.append(f"{_label(row)}  ({row['kind']}", style="bold")
    lines.append(f", uid {row['key']})\n" if row["kind"] == "pod" else ")\n", style="bold")
    findings = row.get("findings", [])
    lines.append("findings: " + (", ".join(f"{f['verdict']} ({f['rule']})" for f in findings)
                                 if findings else "none active") + "\n")
    moving = row.get("details", [])
    lines.append(f"moving over the last {interval:.3g}s "
                 f"({len(moving)} series, per second):\n" if moving else
                 "nothing moved over the last interval\n")
    room = max(8, width - 13)
    for item in moving[:max(0, height - 4)]:
        series = item["series"]
        series = series if len(series) <= room else series[:room - 1] + "…"
        lines.append(f"  {fmt(item['per_second']):>9}  {series}\n")
    return lines


def once_table(doc: dict[str, Any], sort: str, width: int) -> RenderableType:
    """``top --once``: the node row and every row, sorted, all the columns that fit."""
    state = ViewState(sort=sort, selected=-1)
    table, hidden, shown = _table(doc, state, width, 10**6)
    return Group(_header(doc, state, hidden, shown, ""), table)
