"""Fixtures for the SDK's tests: real telemetry providers (in memory), a fake agent.

sdk/tests has no __init__.py on purpose: its modules (all named sdk_* or test_sdk_*) are
imported by basename, so they cannot clash with the agent's `tests` package when both
run in one pytest session from the repository root.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_SRC = Path(__file__).resolve().parents[1] / "src"
if str(_SRC) not in sys.path:  # runnable without `pip install ./sdk` too
    sys.path.insert(0, str(_SRC))

from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from otel_netreceiver_sdk import NetReceiverInstrumentor, SdkConfig  # noqa: E402
from otel_netreceiver_sdk.instrumentor import installed_reporter  # noqa: E402
from otel_netreceiver_sdk.report import Reporter  # noqa: E402
from sdk_support_agent import FakeAgent  # noqa: E402


@dataclass
class Telemetry:
    metrics: InMemoryMetricReader
    meter_provider: MeterProvider
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    logger_provider: LoggerProvider
    logs: InMemoryLogRecordExporter

    def points(self, name: str) -> list[tuple[dict, object]]:
        """(attributes, data point) of every point of metric `name` collected now."""
        data = self.metrics.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes), p) for p in metric.data.data_points]
        return found

    def counts(self, name: str) -> dict[tuple, int]:
        """Counter values (or histogram counts) keyed by sorted attribute items."""
        return {tuple(sorted(a.items())): getattr(p, "value", None) or p.count
                for a, p in self.points(name)}


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    loggers = LoggerProvider()
    loggers.add_log_record_processor(SimpleLogRecordProcessor(logs))
    yield Telemetry(reader, meters, tracers, spans, loggers, logs)
    meters.shutdown()
    tracers.shutdown()
    loggers.shutdown()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: Unix socket paths are limited to 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="sdk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def agent(short_dir: Path) -> Iterator[FakeAgent]:
    fake = FakeAgent(short_dir / "api.sock")
    yield fake
    fake.close()


@pytest.fixture
def instrument(telemetry: Telemetry, short_dir: Path) -> Iterator[Callable[..., Reporter]]:
    """instrument(**SdkConfig fields) -> the installed Reporter; undone after the test.

    Unless the test says otherwise the agent socket is a path where nothing listens, so
    no test talks to a real agent that might run on this machine.
    """
    instrumentor = NetReceiverInstrumentor()
    resolv = short_dir / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def _instrument(**fields: object) -> Reporter:
        fields.setdefault("agent_socket", str(short_dir / "absent.sock"))
        fields.setdefault("resolv_conf", resolv)
        instrumentor.instrument(config=SdkConfig(**fields), env={},
                                meter_provider=telemetry.meter_provider,
                                logger_provider=telemetry.logger_provider)
        reporter = installed_reporter()
        assert reporter is not None
        return reporter

    yield _instrument
    instrumentor.uninstrument()
