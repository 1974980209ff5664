"""/metrics: the exposition format as Prometheus' own client parses it, gzip when asked, and
the node API's connection limits (a scraper or pod that stalls cannot take the listener)."""

from __future__ import annotations

import gzip
import socket
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_netreceiver.export.prometheus import PullServer, render
from otel_netreceiver.httplimits import PER_ADDRESS, REQUEST_TIMEOUT_S
from otel_netreceiver.model import Kind, MetricDef, MetricSeries, SeriesPoint, Snapshot, attrs

TRICKY = 'a "quoted" word, a back\\slash and a\nnewline'
METRIC = MetricDef("netreceiver.test.tricky", Kind.GAUGE, "1", TRICKY, ("odd",))


def _snapshot() -> Snapshot:
    point = SeriesPoint(attrs({"odd": TRICKY}), 0, 1, 7)
    return Snapshot(1, (MetricSeries(METRIC, (point,)),))


def test_help_and_label_escaping_round_trip_through_prometheus_client() -> None:
    text = render(_snapshot(), {"service.name": 'svc "x"'})
    families = {f.name: f for f in text_string_to_metric_families(text)}
    family = next(f for name, f in families.items() if name.startswith("netreceiver_test"))
    assert family.documentation == TRICKY  # HELP: a quote stays a quote
    (sample,) = family.samples
    assert sample.labels["odd"] == TRICKY and sample.value == 7
    assert next(iter(families["target_info"].samples)).labels["service_name"] == 'svc "x"'
    assert '# HELP netreceiver_test_tricky_ratio a "quoted" word' in text


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    pull = PullServer("127.0.0.1", 0, _snapshot, {"service.name": "t"},
                      lambda: (True, "ok"), lambda: (True, "ok"), max_connections=8)
    pull.start()
    yield pull
    pull.shutdown()


def _get(port: int, encoding: str | None) -> tuple[str | None, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if encoding is not None:
        request.add_header("Accept-Encoding", encoding)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers.get("Content-Encoding"), response.read()


def test_gzip_only_when_the_scraper_accepts_it(server) -> None:
    _, plain = _get(server.port, None)
    coding, zipped = _get(server.port, "gzip, deflate")
    assert coding == "gzip" and gzip.decompress(zipped) == plain
    assert _get(server.port, "gzip;q=0, identity")[0] is None
    assert plain.decode() == render(_snapshot(), {"service.name": "t"})


def test_a_stalling_client_is_capped_and_cut(server) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(PER_ADDRESS)]
    try:
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", server.port))
        extra.settimeout(5)
        assert extra.recv(64).startswith(b"HTTP/1.1 503")  # at once, past the per-address cap
        extra.close()
        time.sleep(REQUEST_TIMEOUT_S + 1.0)
        for sock in idle:  # each silent connection was cut by the read timeout
            sock.settimeout(5)
            assert sock.recv(64) == b""
        assert _get(server.port, None)[1]  # and the listener serves again
    finally:
        for sock in idle:
            sock.close()
