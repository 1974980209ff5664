"""Run the playbooks periodically over the agent's own history and publish what they find.

A collector (so it runs on its own thread, is reported by ``probes`` and rebuilt on
reload): each cycle it diagnoses the last ``window`` of the node and
- reports ``netreceiver.diagnosis.findings`` (1 per current finding, by rule, verdict and
  pod): a finding that no longer holds is gone from the next cycle, like any series;
- sends each finding that is new since the previous cycle as an OTLP log record
  (event name DIAGNOSIS_FINDING) through the same OpenTelemetry SDK logs path and exporter
  as the kernel's event records, when an OTLP endpoint is set.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from otel_netreceiver.catalogue import metric
from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.diagnosis.engine import PodListing, Source, diagnose
from otel_netreceiver.diagnosis.model import Finding, Question, Rule
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.otlp_logs import OtlpLogsExporter
from otel_netreceiver.events.sdk_logs import SdkLogsProcessor
from otel_netreceiver.export.settings import ExporterSettings
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs

EVENT_NAME = "DIAGNOSIS_FINDING"
SEVERITY = {"critical": (17, "ERROR"), "warning": (13, "WARN"), "info": (9, "INFO")}


def finding_event(finding: Finding, now_ns: int) -> Event:
    """A finding as an event record: verdict as the reason, rule as the location."""
    number, text = SEVERITY.get(finding.severity, (9, "INFO"))
    own = attrs({"diagnosis.rule": finding.rule, "diagnosis.verdict": finding.verdict,
                 "diagnosis.summary": finding.summary, "diagnosis.advice": finding.advice,
                 "diagnosis.evidence": json.dumps([e.as_dict() for e in finding.evidence])})
    return Event(EVENT_NAME, number, text, now_ns, 0, finding.subject, None, None,
                 finding.verdict, finding.rule, (), own)


def _key(finding: Finding) -> tuple[str, str]:
    return finding.rule, dict(finding.subject).get("k8s.pod.uid", "")


class DiagnosisCollector:
    name = "diagnosis"

    def __init__(self, rules: tuple[Rule, ...], source: Source, pods: PodListing,
                 window_seconds: float, otlp: OtlpConfig | ExporterSettings,
                 resource: Mapping[str, str],
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._rules, self._source, self._pods = rules, source, pods
        self._window, self._clock = int(window_seconds * 1e9), clock
        self._previous: set[tuple[str, str]] = set()
        self._exporter = OtlpLogsExporter(otlp, resource) if otlp.endpoint else None
        self._processor = (SdkLogsProcessor(self._exporter.send, resource,
                                            thread_name="diagnosis-export")
                           if self._exporter else None)
        if self._processor is not None:
            self._processor.start()

    def collect(self) -> Collection:
        now = self._clock()
        question = Question("", now - self._window, now, every_pod=True)
        findings = diagnose(self._rules, self._source, self._pods, question)
        current = {_key(f) for f in findings}
        if self._processor is not None:
            for finding in findings:
                if _key(finding) not in self._previous:
                    self._processor.emit(finding_event(finding, now))
        self._previous = current
        gauge = metric("netreceiver.diagnosis.findings")
        points = [Point(gauge, tuple(sorted((*f.subject, ("diagnosis.rule", f.rule),
                                            ("diagnosis.verdict", f.verdict)))), 1)
                  for f in findings]
        return Collection.of(self.name, _unique(points), now)

    def probe(self) -> ProbeStatus:
        where = f"log records to {self._exporter.url}" if self._exporter else \
            "no OTLP endpoint: findings as the netreceiver.diagnosis.findings gauge only"
        return ProbeStatus(self.name, True, f"{len(self._rules)} rules every cycle over the "
                           f"last {self._window / 1e9:.0f} s; {where}")

    def close(self) -> None:
        if self._processor is not None:
            self._processor.shutdown()
        if self._exporter is not None:
            self._exporter.close()


def _unique(points: list[Point]) -> list[Point]:
    seen: dict[tuple, Point] = {}
    for point in points:
        seen.setdefault(point.attributes, point)
    return list(seen.values())
