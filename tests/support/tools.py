"""Find the external tools the tests drive (promtool, prometheus, vmagent, ethtool, ...).

``scripts/install-deps.sh`` unpacks the Debian trixie builds of Prometheus,
promtool and vmagent into ``TOOLS_BIN`` (they are not installed system-wide:
bookworm's own Prometheus is too old). Everything else comes from PATH.
"""

from __future__ import annotations

import os
import shutil
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
