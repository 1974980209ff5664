"""``otel-netreceiver top``: the live view, ``--once`` and ``--format json``.

The live view puts the terminal in cbreak mode (keys arrive one by one, no echo) and
draws with rich's Live on the alternate screen. It wakes at least twice a second, so a
resize is redrawn at the new size within half a second without a SIGWINCH handler, and
asks the agent again every ``--refresh`` seconds (the agent's rates change once per
export interval; asking more often costs it one cached JSON answer). An agent that stops
answering is reported on the screen, and the last rows stay, until it answers again.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live

from otel_netreceiver.top.client import AgentUnavailable, fetch
from otel_netreceiver.top.state import ViewState, decode_keys, press
from otel_netreceiver.top.view import once_table, render, visible_rows

WAKE_S = 0.5
ONCE_WIDTH = 250  # --once into a pipe: every column, scripts cut what they want


def once(socket_path: str, fmt: str, sort: str, out: TextIO) -> int:
    """Print one answer: a table or the JSON document."""
    try:
        doc = fetch(socket_path)
    except AgentUnavailable as exc:
        print(f"otel-netreceiver top: {exc}", file=sys.stderr)
        return 1
    width = os.get_terminal_size(out.fileno()).columns if out.isatty() else ONCE_WIDTH
    with contextlib.suppress(BrokenPipeError):  # `top --once | head` is fine
        if fmt == "json":
            print(json.dumps(doc, indent=2), file=out)
        else:
            Console(file=out, width=width, highlight=False).print(once_table(doc, sort, width))
    return 0


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_keys(fd: int, timeout: float) -> list[str]:
    ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
    return decode_keys(os.read(fd, 64)) if ready else []


class Session:
    """The live view's loop state: the last answer, the last error, the person's choices."""

    def __init__(self, socket_path: str, refresh: float, sort: str,
                 ask: Callable[[str], dict[str, Any]] = fetch) -> None:
        self.socket_path, self.refresh, self._ask = socket_path, refresh, ask
        self.state = ViewState(sort=sort)
        self.doc: dict[str, Any] = ask(socket_path)  # AgentUnavailable: say so, never start
        self.error = ""
        self.next_ask = time.monotonic() + refresh

    def poll(self) -> None:
        """Ask the agent again when due (not while paused)."""
        if self.state.paused or time.monotonic() < self.next_ask:
            return
        self.next_ask = time.monotonic() + self.refresh
        try:
            self.doc, self.error = self._ask(self.socket_path), ""
        except AgentUnavailable as exc:
            self.error = exc.reason

    def wait(self) -> float:
        """How long to wait for a key before drawing again."""
        if self.state.paused:
            return WAKE_S
        return max(0.0, min(WAKE_S, self.next_ask - time.monotonic()))

    def key(self, key: str) -> None:
        columns = [c["key"] for c in self.doc.get("columns", [])]
        rows = len(visible_rows(self.doc, self.state))
        self.state = press(self.state, key, columns, rows)
        if self.state.selected >= rows > 0:
            self.state = replace(self.state, selected=rows - 1)


def live(socket_path: str, refresh: float, sort: str) -> int:
    """The full-screen view until 'q' or Ctrl-C."""
    try:
        session = Session(socket_path, refresh, sort)
    except AgentUnavailable as exc:
        print(f"otel-netreceiver top: {exc}", file=sys.stderr)
        return 1
    if not sys.stdin.isatty():
        print("otel-netreceiver top: the live view needs a terminal; use --once or "
              "--format json in scripts", file=sys.stderr)
        return 2
    console = Console(highlight=False)
    fd = sys.stdin.fileno()
    with contextlib.suppress(KeyboardInterrupt), _cbreak(fd), \
            Live(console=console, screen=True, auto_refresh=False) as view:
        while not session.state.quit:
            width, height = console.size
            view.update(render(session.doc, session.state, width, height, session.error),
                        refresh=True)
            for key in _read_keys(fd, session.wait()):
                session.key(key)
            session.poll()
    return 0
