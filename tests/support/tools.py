"""Find the external tools the tests drive (promtool, prometheus, vmagent, ethtool, ...).

``scripts/install-deps.sh`` unpacks the Debian trixie builds of Prometheus,
promtool and vmagent into ``TOOLS_BIN`` (they are not installed system-wide:
bookworm's own Prometheus is too old). Everything else comes from PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

TOOLS_BIN = Path(os.environ.get("ONR_TOOLS_BIN", "/opt/otel-netreceiver/tools/bin"))


def find_tool(name: str) -> str | None:
    """Return the path of ``name`` from TOOLS_BIN or PATH, or None."""
    candidate = TOOLS_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """Like find_tool, but fail (not skip) with a message saying how to install it.

    The tools are part of the test environment that ``scripts/install-deps.sh``
    sets up; a missing one is a broken setup, not an absent kernel feature.
    """
    path = find_tool(name)
    if path is None:
        raise RuntimeError(
            f"test tool {name!r} not found in {TOOLS_BIN} or PATH: "
            "run `bash scripts/install-deps.sh` as root"
        )
    return path


def stop_bpftrace(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """SIGINT bpftrace until it prints its maps and exits; its stdout.

    bpftrace 0.17 (Debian bookworm) can lose a SIGINT that arrives soon after its BEGIN
    probe: it then sleeps in epoll_wait with the signal handled and nothing pending, for
    good (seen here in CI: a 30 s communicate() timed out, and a second SIGINT minutes
    later made it exit at once). So the signal is sent again every second.
    """
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
            return out or ""
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                proc.kill()
                proc.communicate()
                raise
