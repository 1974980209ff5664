"""What the person at the terminal chose (sort, filter, selection, details, pause), and
how each key changes it: a pure function, so every key is testable without a terminal."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

UP, DOWN, ENTER, ESC, BACKSPACE = "up", "down", "enter", "esc", "backspace"
QUIT = "quit"
_SEQUENCES = {b"\x1b[A": UP, b"\x1bOA": UP, b"\x1b[B": DOWN, b"\x1bOB": DOWN,
              b"\r": ENTER, b"\n": ENTER, b"\x1b": ESC, b"\x7f": BACKSPACE, b"\x08": BACKSPACE}


@dataclass(frozen=True, slots=True)
class ViewState:
    sort: str = "drops"
    descending: bool = True
    filter: str = ""
    editing: bool = False  # typing a filter after '/'
    selected: int = 0
    details: bool = False
    paused: bool = False
    hide_idle: bool = False  # rows where nothing moved and no finding holds
    quit: bool = False


def decode_keys(data: bytes) -> list[str]:
    """Bytes read from the terminal → key names: arrows, enter, esc, backspace, or the
    character itself. Several keys may arrive in one read."""
    keys, rest = [], data
    while rest:
        for sequence, name in sorted(_SEQUENCES.items(), key=lambda kv: -len(kv[0])):
            if rest.startswith(sequence):
                keys.append(name)
                rest = rest[len(sequence):]
                break
        else:
            keys.append(rest[:1].decode("latin-1"))
            rest = rest[1:]
    return keys


def _filtering(state: ViewState, key: str) -> ViewState:
    if key == ENTER:
        return replace(state, editing=False, selected=0)
    if key == ESC:
        return replace(state, editing=False, filter="", selected=0)
    if key == BACKSPACE:
        return replace(state, filter=state.filter[:-1])
    if len(key) == 1 and key.isprintable():
        return replace(state, filter=state.filter + key)
    return state


def _sort_by(state: ViewState, columns: list[str], step: int) -> ViewState:
    if not columns:
        return state
    index = columns.index(state.sort) if state.sort in columns else 0
    return replace(state, sort=columns[(index + step) % len(columns)], selected=0)


def press(state: ViewState, key: str, columns: list[str], rows: int) -> ViewState:
    """The state after ``key``; ``columns`` are the sortable column keys in table order,
    ``rows`` the number of rows shown (for the selection)."""
    if state.editing:
        return _filtering(state, key)
    if key in ("q", "Q"):
        return replace(state, quit=True)
    if key == ESC:
        return replace(state, details=False) if state.details else replace(state, filter="")
    if key == ENTER:
        return replace(state, details=not state.details and rows > 0)
    if state.details:
        return replace(state, paused=not state.paused) if key == "p" else state
    moves = {UP: -1, DOWN: 1, "k": -1, "j": 1}
    if key in moves:
        return replace(state, selected=max(0, min(rows - 1, state.selected + moves[key])))
    if key in ("<", ">"):
        return _sort_by(state, columns, -1 if key == "<" else 1)
    if key.isdigit() and 0 < int(key) <= len(columns):
        return replace(state, sort=columns[int(key) - 1], selected=0)
    actions: dict[str, dict[str, Any]] = {
        "r": {"descending": not state.descending}, "p": {"paused": not state.paused},
        "i": {"hide_idle": not state.hide_idle, "selected": 0},
        "/": {"editing": True, "filter": ""}}
    return replace(state, **actions[key]) if key in actions else state
