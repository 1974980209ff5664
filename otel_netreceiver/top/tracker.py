"""The agent's side of ``top``: the last two export snapshots and the rows between them.

The export loop hands every snapshot it exports to ``observe`` (no extra reads of the
kernel); the node API's ``GET /v1/top`` asks ``document``, which computes the rows once
per new pair of snapshots, however many terminals are watching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.model import Scope, Snapshot
from otel_netreceiver.top.columns import COLUMNS, Column
from otel_netreceiver.top.rows import top_view


def measured_by(available: Mapping[str, bool]) -> dict[str, Scope]:
    """The catalogued metrics whose collector works here (``probes``), with their scope."""
    return {m.name: m.scope for m in CATALOGUE.values() if available.get(m.source)}


class TopTracker:
    """Thread-safe: the export thread observes, node API threads read."""

    def __init__(self, node: str, interval: float, columns: tuple[Column, ...] = COLUMNS,
                 available: Callable[[], Mapping[str, bool]] = dict) -> None:
        self._node, self._interval, self._columns = node, interval, columns
        self._available = available
        self._lock = threading.Lock()
        self._previous: Snapshot | None = None
        self._current: Snapshot | None = None
        self._document: dict[str, Any] | None = None

    def observe(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._previous, self._current, self._document = self._current, snapshot, None

    def set_interval(self, interval: float) -> None:
        """The export interval changed (a reload): only the warming-up message uses it."""
        with self._lock:
            self._interval = interval

    def document(self) -> dict[str, Any]:
        """``GET /v1/top``: rates over the last export interval, or why there are none yet."""
        with self._lock:
            if self._document is not None:
                return self._document
            previous, current = self._previous, self._current
            if previous is None or current is None:
                return {"node": self._node, "warming_up": True, "interval_s": self._interval,
                        "message": f"the first rates come two export intervals after the "
                                   f"agent starts (every {self._interval:g} s)",
                        "columns": [], "rows": []}
            doc = {"node": self._node, "warming_up": False,
                   **top_view(previous, current, self._columns,
                                measured_by(self._available())).as_dict()}
            self._document = doc
            return doc
