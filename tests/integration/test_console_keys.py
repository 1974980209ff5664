"""The console's totals a keypress away: Enter on `otel-netreceiver run`'s terminal.

The agent runs in a real terminal (tmux) with the console summary every second. Its
summaries show rates only; Enter prints every cumulative value at once, without waiting for
the next interval and without ``exporters.console.totals``; the agent keeps running and
stops on Ctrl-C as before.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
interval: 1s
exporters: {console: {enabled: true}}
collectors: {ebpf: {enabled: false}, events: {enabled: false}, ena: {enabled: false}}
kubernetes: {enabled: false}
imds: {enabled: false}
correlation: {enabled: false}
"""


class Terminal:
    """A private tmux server (socket in the test's directory) running one command."""

    def __init__(self, command: list[str], socket: Path) -> None:
        self.socket = socket
        env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'sdk'}", "NO_COLOR": "1"}
        self._env = env
        # a scrollback that holds the whole run (a pane's limit is fixed when it is made),
        # and the pane kept when the agent exits, with what it printed
        self.tmux("start-server", ";", "set-option", "-g", "history-limit", "100000", ";",
                  "new-session", "-d", "-s", "agent", "-x", "160", "-y", "50",
                  shlex.join(command), ";", "set-option", "-t", "agent", "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, check=True, timeout=10, env=self._env).stdout

    def history(self) -> str:
        """Everything the pane printed, scrollback included."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "agent")

    def wait_for(self, text: str, timeout: float = 60.0, after: str = "") -> str:
        """The pane's history once ``text`` is printed (after the last ``after``, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.history()
            if text in seen[seen.rfind(after) if after else 0:]:
                return seen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not printed in {timeout:.0f}s; the pane:\n"
                             + self.history()[-3000:])

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True,
                       check=False)


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed: run scripts/install-deps.sh")
    config = tmp_path / "agent.yaml"
    config.write_text(CONFIG)
    term = Terminal([sys.executable, "-m", "otel_netreceiver", "run", "-c", str(config)],
                    tmp_path / "tmux.sock")
    try:
        yield term
    finally:
        term.close()


def test_enter_prints_the_totals_between_summaries(terminal: Terminal) -> None:
    terminal.wait_for("press Enter, or exporters.console.totals")
    seen = terminal.wait_for("rates over the last")  # a second summary: rates, no totals
    assert "── totals on" not in seen and "  totals:" not in seen
    terminal.tmux("send-keys", "-t", "agent", "Enter")
    seen = terminal.wait_for("── totals on", timeout=10)
    totals = seen[seen.index("── totals on"):].split("── otel-netreceiver on")[0]
    assert "netreceiver.collector.cycles" in totals, totals  # every cumulative value
    assert "rates over" not in totals
    assert seen.count("── totals on") == 1  # once per keypress, not with every summary
    # still running: the next summary comes, and Ctrl-C stops it as before
    terminal.wait_for("rates over the last", after="── totals on")
    terminal.tmux("send-keys", "-t", "agent", "C-c")
    terminal.wait_for("stopped after a final export", timeout=30)
