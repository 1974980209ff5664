"""Real backends for end-to-end tests: Prometheus (remote-write receiver) fed by vmagent."""

from __future__ import annotations

import pytest

from tests.support.backends import start_prometheus, start_vmagent


@pytest.fixture
def vmagent_pipeline(tmp_path):
    prometheus = start_prometheus(tmp_path / "prometheus")
    vmagent = start_vmagent(tmp_path / "vmagent", remote_write_url=prometheus.remote_write_url)
    yield prometheus, vmagent
    vmagent.stop()
    prometheus.stop()
