"""One export of a snapshot to every exporter, with each exporter's outcome counted.

Apart from the agent (runtime/agent.py), which calls it from the export loop and from the
final flush at stop: the rule that only an export every exporter took acknowledges the
baselines (a failed exporter gets the same cumulative series again next interval) is the
caller's, what each exporter did is counted here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from otel_netreceiver.export.base import Exporter
from otel_netreceiver.model import Snapshot
from otel_netreceiver.runtime.selftelemetry import ExporterStats, RuntimeCounters

log = logging.getLogger(__name__)


def push(snapshot: Snapshot, exporters: Iterable[Exporter], counters: RuntimeCounters) -> bool:
    """Export ``snapshot`` everywhere; True when every exporter took it."""
    all_ok = True
    for exporter in exporters:
        result = exporter.export(snapshot)
        all_ok = all_ok and result.ok
        stats = counters.exporters.setdefault(exporter.name, ExporterStats())
        if result.ok:
            if stats.last_error:
                log.info("export to %s recovered", exporter.name)
            stats.points += result.points
            stats.encoded_bytes += result.encoded_bytes
            stats.last_error = ""
        else:
            stats.failures += 1
            log.warning("export to %s failed (%d series kept for the next interval): %s",
                        exporter.name, snapshot.point_count(), result.error)
            stats.last_error = result.error
    return all_ok
