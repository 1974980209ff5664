"""Soak suite plumbing: scaled durations, resource sampling, and a figures report.

Every scenario runs in two lengths. The default (CI) keeps each scenario to
seconds; ``ONR_SOAK=full`` scales the same scenarios to the durations of
issue 8 (10 minutes of backend outage, an hour of churn in compressed time).
The figures each scenario measures (peak vs steady memory, fds, CPU, data
lost) are printed at the end of the run, so RELIABILITY.md can quote them
with the command that produced them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.soak import FIGURES, FULL, ResourceSampler, fmt


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not FIGURES:
        return
    terminalreporter.section(f"soak figures ({'full' if FULL else 'ci'} durations)")
    for scenario, figures in FIGURES:
        text = ", ".join(f"{k}={fmt(v)}" for k, v in figures.items())
        terminalreporter.write_line(f"{scenario}: {text}")


@pytest.fixture
def sampler() -> Iterator[ResourceSampler]:
    with ResourceSampler() as s:
        yield s
