"""Real backends for end-to-end tests: Prometheus (remote-write receiver) fed by vmagent.

Both run on 127.0.0.1 with their config, data and logs in the test's tmp_path
(pytest keeps the last runs' directories: the logs are there after a failure).
A missing binary is an error, not a skip: the tools are part of the test
environment that scripts/install-deps.sh sets up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import Pipeline, Prometheus, start_prometheus, start_vmagent


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus 2.53 accepting remote write, 1s rule evaluation, no rules, no scrape jobs."""
    with start_prometheus(tmp_path / "prometheus") as backend:
        yield backend


@pytest.fixture
def vmagent_pipeline(prometheus: Prometheus, tmp_path: Path) -> Iterator[Pipeline]:
    """vmagent (OTLP/HTTP in, Prometheus naming) remote-writing into the ``prometheus`` fixture.

    Unpacks as ``prometheus, vmagent = vmagent_pipeline``. vmagent is stopped
    before Prometheus (fixture teardown runs in reverse order).
    """
    with start_vmagent(tmp_path / "vmagent",
                       remote_write_url=prometheus.remote_write_url) as vmagent:
        yield Pipeline(prometheus, vmagent)
