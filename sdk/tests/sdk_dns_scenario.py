"""Run inside a test network namespace: instrumented lookups, printed as JSON.

`python sdk_dns_scenario.py AGENT_SOCKET NAME`: looks NAME up through getaddrinfo (the
netns's resolv.conf points at sdk_support_dns.py) and, when it fails, through requests;
prints what the SDK recorded and explained.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[1] / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from otel_netreceiver_sdk import NetReceiverInstrumentor, SdkConfig, classify, explain  # noqa: E402


def _histogram(reader: InMemoryMetricReader) -> list[dict]:
    found = []
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "dns.lookup.duration":
                    found += [{"attributes": dict(p.attributes), "count": p.count,
                               "sum": p.sum} for p in metric.data.data_points]
    return found


def _through_clients(url: str) -> dict[str, str]:
    """The same failing lookup through requests, httpx and aiohttp, classified."""
    import asyncio

    import aiohttp
    import httpx
    import requests

    async def with_aiohttp() -> BaseException:
        async with aiohttp.ClientSession() as session:
            try:
                await session.get(url)
            except aiohttp.ClientError as exc:
                return exc
        raise AssertionError("aiohttp: no error")

    found: dict[str, str] = {}
    for label, call, error in (("requests", requests.get, requests.RequestException),
                               ("httpx", httpx.get, httpx.HTTPError)):
        try:
            call(url, timeout=5)
        except error as exc:
            found[label] = classify(exc).error_type
    found["aiohttp"] = classify(asyncio.run(with_aiohttp())).error_type
    return found


def main(agent_socket: str, name: str) -> dict:
    reader = InMemoryMetricReader()
    NetReceiverInstrumentor().instrument(
        config=SdkConfig(agent_socket=agent_socket), env={},
        meter_provider=MeterProvider(metric_readers=[reader]))
    out: dict = {}
    try:
        out["addresses"] = sorted({ai[4][0] for ai in socket.getaddrinfo(name, 80)})
    except socket.gaierror as exc:
        e = explain(exc)
        c = e.classification
        out.update(error_type=c.error_type, errno=c.errno, verdict=e.verdict,
                   packets_lost=e.packets_lost, agent_status=e.agent_status,
                   duration=c.observation.duration_s, summary=e.summary,
                   resolver=[e.resolver.nameservers, e.resolver.timeout_s, e.resolver.libc])
        out["clients"] = _through_clients(f"http://{name}/")
    out["histogram"] = _histogram(reader)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
