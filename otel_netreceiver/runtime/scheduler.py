"""Run each collector on its own thread, on a fixed grid with a random phase, isolated.

One thread per collector is the isolation boundary the agent needs: a
collector that hangs (a wedged ioctl, a slow /proc read) or raises does not
delay the others or the export loop. A failing collector is retried with
exponential backoff (capped at ten intervals) and its errors are counted in
self-telemetry.

Jitter is a phase chosen once per runner (up to ``jitter`` x interval after the
first cycle), not a random wait every cycle: the nodes of a cluster still spread
their reads, but each runner keeps a steady period, so the export loop (which
runs just after the latest possible phase) always sees this period's values.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from otel_netreceiver.collectors.base import Collector
from otel_netreceiver.model import Collection

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a runner hands its collections: the series store, the history, or both."""

    def update(self, collection: Collection) -> None: ...


class Fanout:
    """Hand each collection to several sinks (the store and the history)."""

    def __init__(self, *sinks: Sink) -> None:
        self._sinks = sinks

    def update(self, collection: Collection) -> None:
        for sink in self._sinks:
            sink.update(collection)


@dataclass
class RunnerStats:
    """Counters the self-telemetry collector reads; written by one runner thread only."""

    cycles: int = 0
    errors: int = 0
    cpu_seconds: float = 0.0
    last_duration: float = 0.0
    last_error: str = ""
    consecutive_failures: int = 0
    restarts: int = 0  # cycles that died with an exception run_once could not catch
    first_done: threading.Event = field(default_factory=threading.Event)


class CollectorRunner:
    """Owns one collector's thread: collect, hand to the store, wait, repeat."""

    def __init__(self, collector: Collector, store: Sink, interval: float,
                 jitter: float, rng: random.Random | None = None, name: str = "") -> None:
        self.collector = collector
        self.stats = RunnerStats()
        self._name = name or collector.name
        self._store = store
        self._cycle_lock = threading.Lock()  # the loop and collect_now() take turns
        self._last_cycle = 0.0
        self._last_cycle_wall = 0  # time.time_ns() when the last cycle ended
        self._interval, self._jitter = interval, jitter
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"collector-{self._name}",
                                        daemon=True)

    @property
    def name(self) -> str:
        return self._name

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and close the collector once its current cycle is over."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("collector %s did not stop within %.0fs; abandoning its thread",
                        self.name, timeout)
            return
        try:
            self.collector.close()
        except Exception:
            log.exception("collector %s failed to close", self.name)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def collect_now(self, max_age: float, after_unix_nano: int = 0,
                    min_gap: float = 0.05) -> None:
        """Run a cycle now unless one ended less than ``max_age`` seconds ago, after
        ``after_unix_nano`` (wall clock).

        The node API calls this when a pod asks about an error it just had, with the
        error's time: a cycle that ended before the error cannot have seen what caused
        it (a reset that arrived a few ms before, with the last cycle 0.5 s old), however
        recent. Cycles are at least ``min_gap`` apart (waiting for it), so a flood of
        questions costs at most 1/min_gap reads a second.
        """
        with self._cycle_lock:
            age = time.monotonic() - self._last_cycle
            if age < max_age and self._last_cycle_wall >= after_unix_nano:
                return
            if age < min_gap:
                time.sleep(min_gap - age)
            self._run_locked()

    def run_once(self) -> bool:
        """One cycle; True when the collector produced a collection."""
        with self._cycle_lock:
            return self._run_locked()

    def _run_locked(self) -> bool:
        wall, cpu = time.monotonic(), time.thread_time()
        ok = True
        try:
            collection = self.collector.collect()
            self._store.update(collection)
            if collection.errors:
                self.stats.errors += 1
                self._report(f"partial: {'; '.join(collection.errors[:3])}")
            else:
                self.stats.last_error = ""
        except Exception as exc:
            ok = False
            self.stats.errors += 1
            self._report(f"{type(exc).__name__}: {exc}", exc)
        self.stats.cycles += 1
        self.stats.last_duration = time.monotonic() - wall
        self.stats.cpu_seconds += time.thread_time() - cpu
        self.stats.consecutive_failures = 0 if ok else self.stats.consecutive_failures + 1
        self.stats.first_done.set()
        self._last_cycle, self._last_cycle_wall = time.monotonic(), time.time_ns()
        return ok

    def _supervised_once(self) -> bool:
        """run_once, surviving what it does not catch, so the thread itself never dies.

        run_once catches Exception; a BaseException (SystemExit raised by a library, a
        GeneratorExit, a bug in the bookkeeping) would otherwise end the thread silently and
        the collector would stay stopped until a restart. Here it is logged, counted as a
        failed cycle, and the collector is restarted after the usual backoff.
        """
        try:
            return self.run_once()
        except BaseException as exc:  # the supervision boundary of the thread
            self.stats.errors += 1
            self.stats.restarts += 1
            self.stats.consecutive_failures += 1
            self.stats.first_done.set()
            log.error("collector %s: its cycle died (%s: %s); restarting it in %.0fs",
                      self.name, type(exc).__name__, exc, self.backoff(), exc_info=exc)
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return False

    def _housekeep(self) -> None:
        """The collector's slow upkeep (``housekeep()``, if it has one), after its own
        scheduled cycles only and outside the cycle lock: a node-API question
        (``collect_now``) neither pays for it nor waits for it."""
        housekeep = getattr(self.collector, "housekeep", None)
        if housekeep is None:
            return
        try:
            housekeep()
        except Exception as exc:  # upkeep is advice: its failure costs no cycle
            log.warning("collector %s: housekeeping failed: %s", self.name, exc)

    def _report(self, message: str, exc: BaseException | None = None) -> None:
        # Log a failure when it starts or changes, not every cycle it persists.
        if message != self.stats.last_error:
            log.warning("collector %s: %s", self.name, message, exc_info=exc)
        self.stats.last_error = message

    def backoff(self) -> float:
        """Wait after a failed cycle: 1, 2, 4 ... intervals, at most ten."""
        failures = max(self.stats.consecutive_failures, 1)
        return min(self._interval * 2 ** (failures - 1), self._interval * 10)

    def _loop(self) -> None:
        start = time.monotonic()
        phase = self._rng.random() * self._jitter * self._interval
        while not self._stop.is_set():
            ok = self._supervised_once()
            self._housekeep()
            if not ok:
                self._stop.wait(self.backoff())
                continue
            # next slot of the grid start + phase + k * interval (skip slots already missed)
            elapsed = time.monotonic() - start - phase
            slot = max(int(elapsed // self._interval) + 1, 1)
            self._stop.wait(max(start + phase + slot * self._interval - time.monotonic(), 0.0))
