"""``otel-netreceiver watch``: load the event programs and print one line per event, live.

Like ACK's ``inspector watch``: filterable by type (which also decides what is
loaded), Kubernetes namespace and pod (name or UID). Lines are flushed as they
come; Ctrl-C (or SIGTERM) stops, detaches the programs and prints what was
dropped on the way to stderr.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TextIO

from otel_netreceiver.config.loader import LoadedConfig
from otel_netreceiver.events.model import Event, summary
from otel_netreceiver.events.otlp_logs import event_attributes
from otel_netreceiver.events.source import EventSource
from otel_netreceiver.k8s.directory import NoPods, PodDirectory


@dataclass(frozen=True, slots=True)
class Filter:
    types: tuple[str, ...] = ()
    namespace: str = ""
    pod: str = ""

    def matches(self, event: Event) -> bool:
        if self.types and event.name not in self.types:
            return False
        if self.namespace and event.attribute("k8s.namespace.name") != self.namespace:
            return False
        return not self.pod or self.pod in (event.attribute("k8s.pod.name"),
                                            event.attribute("k8s.pod.uid"))


def _when(event: Event) -> str:
    moment = datetime.fromtimestamp(event.time_unix_nano / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _who(event: Event) -> str:
    pod = dict(event.pod)
    if pod.get("k8s.pod.name"):
        return f"pod={pod.get('k8s.namespace.name', '')}/{pod['k8s.pod.name']}"
    if pod.get("k8s.pod.uid"):
        return f"pod.uid={pod['k8s.pod.uid']}"
    return f"netns={pod.get('netns.kind', 'unknown')}:{pod.get('netns.inode', '?')}"


def format_event(event: Event, fmt: str) -> str:
    """One line of ``watch`` output (pure)."""
    if fmt == "json":
        return json.dumps({"time": _when(event), "severity": event.severity_text,
                           "body": summary(event), "attributes": dict(event_attributes(event))},
                          sort_keys=True)
    return f"{_when(event)} {_who(event)} {summary(event)}"


class Printer:
    """Writes matching events; a closed output (``watch | head``) ends the watch."""

    def __init__(self, flt: Filter, fmt: str, stream: TextIO, closed: threading.Event) -> None:
        self._filter, self._fmt, self._stream = flt, fmt, stream
        self._closed = closed

    def __call__(self, event: Event) -> None:
        if self._closed.is_set() or not self._filter.matches(event):
            return
        try:
            self._stream.write(format_event(event, self._fmt) + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away, or the stream closed
            self._closed.set()


def _directory(loaded: LoadedConfig, env: Mapping[str, str]):  # type: ignore[no-untyped-def]
    from otel_netreceiver.k8s.connect import api_factory
    from otel_netreceiver.k8s.pods import PodWatcher
    from otel_netreceiver.resource import node_name

    factory, _ = api_factory(loaded.config.kubernetes, env)
    if factory is None:
        return None
    return PodWatcher(node_name(loaded.config, env), factory)


def watch(loaded: LoadedConfig, env: Mapping[str, str], types: Sequence[str], namespace: str,
          pod: str, fmt: str, stream: TextIO | None = None) -> int:
    cfg = loaded.config
    events = replace(cfg.collectors.events, types=list(types or cfg.collectors.events.types))
    out = stream or sys.stdout
    pods = _directory(loaded, env)
    directory: PodDirectory = pods if pods is not None else NoPods()
    if pods is not None:
        pods.start()
    stop = threading.Event()
    source = EventSource(events, cfg.collectors.ebpf, cfg.proc_root, directory,
                         Printer(Filter(tuple(types), namespace, pod), fmt, out, stop))
    try:
        for probe, reason in source.statuses.items():
            print(f"{probe}: {'loaded' if not reason else 'unavailable: ' + reason}",
                  file=sys.stderr)
        if not source.loaded:
            print("otel-netreceiver watch: no event probe could be loaded", file=sys.stderr)
            return 1
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        source.start()
        print(f"watching {', '.join(events.types)} (Ctrl-C stops)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        dropped = {f"{n}/{r}": c for (n, r), c in sorted(source.drop_counts().items())}
        print(f"dropped: {json.dumps(dropped)}", file=sys.stderr)
        return 0
    finally:
        source.close()
        if pods is not None:
            pods.stop()
