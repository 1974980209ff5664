"""Generate docs/metrics.md, docs/configuration.md and docs/playbooks.md from the code.

``python -m otel_netreceiver.docsgen docs/`` rewrites them; the tests fail
when a checked-in copy differs, so the docs cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

from otel_netreceiver.bpf.probes.dns.catalogue import ATTRIBUTION as LINKLOCAL_ATTRIBUTION
from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.config.schema import AgentConfig
from otel_netreceiver.diagnosis.playbooks_doc import playbooks_markdown
from otel_netreceiver.naming import prometheus_series_names


def metrics_markdown() -> str:
    lines = [
        "# Metric catalogue",
        "",
        "Generated from `otel_netreceiver/catalogue.py` by "
        "`python -m otel_netreceiver.docsgen docs/`; do not edit by hand.",
        "",
        "`Prometheus` is the name after the OTLP → Prometheus translation that ADOT and vmagent "
        "apply (dots to `_`, unit suffix, `_total` on counters). Scope `node` means the kernel "
        "keeps the number once per node and the agent exports it once.",
        "",
        "| OTLP name | Prometheus | kind | unit | scope | attributes | source | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in CATALOGUE.values():
        prom = "<br>".join(f"`{n}`" for n in prometheus_series_names(m))
        attributes = ", ".join(f"`{a}`" for a in m.attributes) or "—"
        lines.append(f"| `{m.name}` | {prom} | {m.kind.value} | `{m.unit or ' '}` | "
                     f"{m.scope.value} | {attributes} | {m.source} | {m.description} |")
    return "\n".join(lines) + "\n\n" + LINKLOCAL_ATTRIBUTION


def _config_rows(cls: type, prefix: str, instance: object) -> list[str]:
    rows = []
    hints = typing.get_type_hints(cls)
    for fld in dataclasses.fields(cls):
        dotted = f"{prefix}{fld.name}"
        value = getattr(instance, fld.name)
        if dataclasses.is_dataclass(value):
            rows.append(f"| `{dotted}` | section | | {fld.metadata.get('doc', '')} |")
            rows.extend(_config_rows(type(value), f"{dotted}.", value))
            continue
        kind = getattr(hints[fld.name], "__name__", str(hints[fld.name]))
        doc = fld.metadata.get("doc", "")
        if fld.metadata.get("duration"):
            kind = "duration"
        if fld.metadata.get("choices"):
            doc += " One of: " + ", ".join(f"`{c}`" for c in fld.metadata["choices"]) + "."
        if fld.metadata.get("env"):
            doc += f" Environment: `{fld.metadata['env']}`."
        rows.append(f"| `{dotted}` | {kind} | `{value!r}` | {doc} |")
    return rows


def configuration_markdown() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `otel_netreceiver/config/schema.py`; do not edit by hand. One YAML "
        "file, every key optional; unknown keys, wrong types and bad values are errors naming "
        "the file, the line and the key. Durations are numbers of seconds or strings like "
        "`15s`, `500ms`, `2m`. A key set in the file wins over its environment variable; the "
        "variable fills the key when the file leaves it out (`OTEL_METRIC_EXPORT_INTERVAL`, "
        "`OTEL_METRIC_EXPORT_TIMEOUT`, `OTEL_BLRP_*` delays and `OTEL_EXPORTER_OTLP_*TIMEOUT` "
        "are in milliseconds, as the OpenTelemetry spec says).",
        "",
        "Every `exporters.otlp` key is resolved per signal: the file key, then "
        "`OTEL_EXPORTER_OTLP_METRICS_<KEY>` or `OTEL_EXPORTER_OTLP_LOGS_<KEY>`, then "
        "`OTEL_EXPORTER_OTLP_<KEY>`, then the default. A generic endpoint is a base URL "
        "(OTLP/HTTP appends `metrics_path` or `logs_path`); a signal-specific one is used as "
        "it is. A gRPC endpoint without a scheme uses TLS unless `insecure` is true. "
        "`OTEL_SDK_DISABLED=true` turns OTLP export of both signals off; "
        "`OTEL_METRICS_EXPORTER` / `OTEL_LOGS_EXPORTER` without `otlp` (e.g. `none`) turn "
        "that signal's off, and `otlp` alone means the specification's default endpoint.",
        "",
        "The file is re-read when it changes and on SIGHUP; an invalid version is logged and the "
        "last good configuration keeps running.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    lines.extend(_config_rows(AgentConfig, "", AgentConfig()))
    return "\n".join(lines) + "\n"


GENERATED = {"metrics.md": metrics_markdown, "configuration.md": configuration_markdown,
             "playbooks.md": playbooks_markdown}


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs")
    for name, render in GENERATED.items():
        (target / name).write_text(render(), encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
