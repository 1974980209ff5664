"""A Prometheus pull endpoint over the same snapshot the OTLP exporter sends.

Names are translated exactly as ADOT/vmagent translate OTLP (naming.py), so
a rule written for AMP works against a scrape of /metrics too. Resource
attributes go to ``target_info`` (the OpenTelemetry compatibility spec). The
same server answers the kubelet's probes on /healthz and /readyz.

The text follows the exposition format ("Prometheus text-based format", version 0.0.4):
HELP escapes only backslash and newline, label values also the double quote; the body is
gzipped when the scraper accepts it (Prometheus asks for gzip). The listener has the node
API's limits (httplimits.py): bounded concurrent requests, per client address, and a read
timeout.
"""

from __future__ import annotations

import gzip
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otel_netreceiver.httplimits import REQUEST_TIMEOUT_S, BoundedServer, Limits
from otel_netreceiver.model import Attributes, HistogramValue, Kind, Snapshot
from otel_netreceiver.naming import prometheus_name, sanitize

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    """A label value: backslash, newline and double quote escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    """HELP text: only backslash and newline are escaped (a quote stays a quote)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(attributes: Attributes, extra: Iterable[tuple[str, str]] = ()) -> str:
    pairs = [(sanitize(k), v) for k, v in attributes] + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if isinstance(value, float) else str(value)


def _histogram_lines(name: str, attributes: Attributes, value: HistogramValue) -> list[str]:
    lines, running = [], 0
    for bound, count in zip((*value.bounds, math.inf), value.bucket_counts, strict=True):
        running += count
        le = [("le", _number(float(bound)))]
        lines.append(f"{name}_bucket{_labels(attributes, le)} {running}")
    lines.append(f"{name}_sum{_labels(attributes)} {_number(value.sum)}")
    lines.append(f"{name}_count{_labels(attributes)} {value.count}")
    return lines


def render(snapshot: Snapshot, resource: Mapping[str, str]) -> str:
    """The text exposition format of a snapshot."""
    out = ["# HELP target_info Target metadata", "# TYPE target_info gauge",
           f"target_info{_labels(tuple(sorted(resource.items())))} 1"]
    types = {Kind.COUNTER: "counter", Kind.GAUGE: "gauge", Kind.HISTOGRAM: "histogram"}
    for series in snapshot.metrics:
        name = prometheus_name(series.metric)
        out.append(f"# HELP {name} {_escape_help(series.metric.description)}")
        out.append(f"# TYPE {name} {types[series.metric.kind]}")
        for point in series.points:
            if isinstance(point.value, HistogramValue):
                out.extend(_histogram_lines(name, point.attributes, point.value))
            else:
                out.append(f"{name}{_labels(point.attributes)} {_number(point.value)}")
    return "\n".join(out) + "\n"


class _PullHttpServer(BoundedServer, ThreadingHTTPServer):
    pass


class PullServer:
    """/metrics, /healthz and /readyz on one port, served from a daemon thread."""

    def __init__(self, host: str, port: int, snapshot: Callable[[], Snapshot],
                 resource: Mapping[str, str], health: Callable[[], tuple[bool, str]],
                 ready: Callable[[], tuple[bool, str]], max_connections: int = 8) -> None:
        handler = _handler_class(snapshot, dict(resource), health, ready)
        limits = Limits(threading.BoundedSemaphore(max_connections))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("PullHttpServer", (_PullHttpServer,),
                          {"limits": limits, "address_family": family})
        self._server = server_cls((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="prometheus-pull", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _accepts_gzip(header: str | None) -> bool:
    """Accept-Encoding names gzip without q=0 (RFC 9110, section 12.5.3)."""
    for part in (header or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _handler_class(snapshot, resource, health, ready):  # type: ignore[no-untyped-def]
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT_S  # a scraper that sends nothing is cut

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, render(snapshot(), resource), CONTENT_TYPE,
                            _accepts_gzip(self.headers.get("Accept-Encoding")))
            elif path in ("/healthz", "/readyz"):
                ok, why = (health if path == "/healthz" else ready)()
                self._reply(200 if ok else 503, why + "\n", "text/plain")
            else:
                self._reply(404, "not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def _reply(self, code: int, body: str, ctype: str, gzipped: bool = False) -> None:
            data = body.encode()
            if gzipped:
                data = gzip.compress(data, compresslevel=5)
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("pull %s", format % args)

    return Handler
