"""Soak suite helpers: scaled durations, resource sampling, a figures report (see tests/soak)."""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

FULL = os.environ.get("ONR_SOAK", "").lower() == "full"
FIGURES: list[tuple[str, dict[str, object]]] = []


def scaled(ci: float, full: float) -> float:
    """The CI length of a phase, or its full-soak length under ONR_SOAK=full."""
    return full if FULL else ci


def record(scenario: str, **figures: object) -> None:
    """Keep one scenario's figures for the end-of-run report."""
    FIGURES.append((scenario, figures))


def fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def rss_bytes() -> int:
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sample:
    at: float
    rss: int
    traced: int
    fds: int


@dataclass
class ResourceSampler:
    """Samples this process's RSS, traced Python memory and fd count on a thread.

    ``mark(name)`` labels the moment a phase starts, so a scenario can compare
    the steady state before a fault with the peak during it.
    """

    period: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ResourceSampler:
        tracemalloc.start()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        tracemalloc.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.take()

    def take(self) -> Sample:
        sample = Sample(time.monotonic(), rss_bytes(), tracemalloc.get_traced_memory()[0],
                        fd_count())
        self.samples.append(sample)
        return sample

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()
        self.take()

    def between(self, start: str, end: str | None = None) -> list[Sample]:
        lo, hi = self.marks[start], self.marks[end] if end else float("inf")
        return [s for s in self.samples if lo <= s.at <= hi]

    def steady(self, start: str, end: str) -> tuple[float, float, float]:
        """Median RSS, traced memory and fds of a phase."""
        window = self.between(start, end)
        return (statistics.median(s.rss for s in window),
                statistics.median(s.traced for s in window),
                statistics.median(s.fds for s in window))

    def peak(self, start: str, end: str | None = None) -> tuple[int, int, int]:
        window = self.between(start, end)
        return (max(s.rss for s in window), max(s.traced for s in window),
                max(s.fds for s in window))


def wait_until(check, timeout: float = 10.0, period: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something true; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(period)
    raise AssertionError(f"condition not reached within {timeout:.1f}s")
