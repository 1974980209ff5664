"""Connection limits shared by the agent's HTTP listeners (the node API and /metrics).

Both listen on the node, where any pod can reach them: a client that opens connections and
stalls must not take every thread, and one address must not take every slot. A listener
serves at most ``slots`` requests at once and ``per_address`` per TCP source address; the
rest get 503 at once, without a thread. Handlers set a socket timeout (``REQUEST_TIMEOUT_S``)
so a client that sends nothing is cut.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 2.0  # a silent client is cut after this long on each read
PER_ADDRESS = 4  # connections one TCP source address may hold at once (slow-loris)
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n")


class Limits:
    """How many requests a listener serves at once, in all and per source address."""

    def __init__(self, slots: threading.BoundedSemaphore, per_address: int = PER_ADDRESS,
                 on_busy: Callable[[], None] = lambda: None) -> None:
        self.slots, self.per_address, self.on_busy = slots, per_address, on_busy
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, source: str) -> bool:
        with self._lock:
            if source and self._held[source] >= self.per_address:
                return False
            if not self.slots.acquire(blocking=False):
                return False
            self._held[source] += 1
            return True

    def give(self, source: str) -> None:
        with self._lock:
            self._held[source] -= 1
            if self._held[source] <= 0:
                del self._held[source]
        self.slots.release()


def source_of(client_address: Any) -> str:
    """A TCP client's address; Unix-socket peers are told apart only after accept (pid)."""
    return client_address[0] if isinstance(client_address, tuple) and client_address else ""


class BoundedServer:
    """Mixin for socketserver's threading servers: requests beyond ``limits`` get 503."""

    limits: Limits
    daemon_threads = True
    request_queue_size = 64

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.limits.take(source_of(client_address)):
            self.limits.on_busy()
            with contextlib.suppress(OSError):
                request.sendall(BUSY)
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        super().process_request(request, client_address)  # type: ignore[misc]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.limits.give(source_of(client_address))

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("http listener: connection error from %s", client_address, exc_info=True)
