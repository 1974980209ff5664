"""A bounded batch processor for events, like the OTel SDK's BatchLogRecordProcessor.

``emit`` never blocks the poll thread: a full queue refuses the event and counts
it. One worker thread exports batches of up to ``max_export_batch_size`` when
that many are queued or every ``schedule_delay`` seconds; a failed export loses
that batch (logs are not cumulative like counters) and counts every event of it.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

from otel_netreceiver.events.model import Event

log = logging.getLogger(__name__)

# Sends one batch within the timeout (seconds); returns "" on success, else the error.
Export = Callable[[Sequence[Event], float], str]


class BatchProcessor:
    def __init__(self, export: Export, max_queue_size: int = 2048,
                 max_export_batch_size: int = 512, schedule_delay: float = 1.0,
                 export_timeout: float = 10.0) -> None:
        self._export = export
        self._queue: deque[Event] = deque()
        self._max_queue, self._batch = max_queue_size, max_export_batch_size
        self._delay, self._timeout = schedule_delay, export_timeout
        self._cond = threading.Condition()
        self._stopping = False
        self.exported: defaultdict[str, int] = defaultdict(int)
        self.dropped: defaultdict[tuple[str, str], int] = defaultdict(int)  # (name, reason)
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="events-export", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def emit(self, event: Event) -> bool:
        with self._cond:
            if len(self._queue) >= self._max_queue or self._stopping:
                self.dropped[(event.name, "queue_full")] += 1
                return False
            self._queue.append(event)
            if len(self._queue) >= self._batch:
                self._cond.notify()
        return True

    def _take(self) -> list[Event]:
        n = min(len(self._queue), self._batch)
        return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and len(self._queue) < self._batch:
                    self._cond.wait(self._delay)
                batch, stopping = self._take(), self._stopping
            if batch:
                self._send(batch)
            if stopping and not batch:
                return

    def _send(self, batch: list[Event]) -> None:
        try:
            error = self._export(batch, self._timeout)
        except Exception as exc:  # an exporter must not kill the worker
            error = f"{type(exc).__name__}: {exc}"
        if error:
            if error != self.last_error:
                log.warning("event export failed (%d events lost): %s", len(batch), error)
            self.last_error = error
            for event in batch:
                self.dropped[(event.name, "export_failed")] += 1
            return
        self.last_error = ""
        for event in batch:
            self.exported[event.name] += 1

    def shutdown(self, timeout: float = 10.0) -> None:
        """Export what is queued (within ``timeout``), then stop the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:  # whatever is left after the deadline is counted, not lost silently
            for event in self._queue:
                self.dropped[(event.name, "shutdown")] += 1
            self._queue.clear()
