"""Where each OTLP exporter setting comes from, resolved once for metrics and once for logs.

Users configure the agent as they configure every OpenTelemetry component, so
the variables of the "OTLP Exporter Configuration" and "SDK Environment
Variables" specifications all count, with one precedence for every key:

    file key  >  OTEL_EXPORTER_OTLP_{METRICS,LOGS}_<KEY>  >  OTEL_EXPORTER_OTLP_<KEY>  >  default

(the file is the programmatic configuration, which the specifications let win over
the environment). The endpoint follows the specification's path rule: a generic
endpoint (file or ``OTEL_EXPORTER_OTLP_ENDPOINT``) is a base URL to which OTLP/HTTP
appends ``/v1/metrics`` or ``/v1/logs``; a signal-specific one is used as it is.
``OTEL_SDK_DISABLED=true`` and ``OTEL_{METRICS,LOGS}_EXPORTER`` without ``otlp``
turn the signal's OTLP export off. The result is a frozen value: the exporters
never read the environment themselves.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from otel_netreceiver.config.environment import parse_variable
from otel_netreceiver.config.loader import ConfigError, check_value
from otel_netreceiver.config.schema import AgentConfig, OtlpConfig

SIGNALS = ("metrics", "logs")
# Every per-signal key of the OTLP exporter specification, by its OtlpConfig field.
KEYS = ("endpoint", "protocol", "headers", "timeout", "compression", "certificate",
        "client_key", "client_certificate", "insecure")
DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
# OTEL_{METRICS,LOGS}_EXPORTER values of the SDK environment specification.
_KNOWN_EXPORTERS = {"metrics": {"otlp", "prometheus", "console", "none"},
                    "logs": {"otlp", "console", "none"}}
_FIELDS = {f.name: f for f in dataclasses.fields(OtlpConfig)}
_HINTS = typing.get_type_hints(OtlpConfig)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Files for TLS and mTLS; empty strings mean the system trust store and no client cert."""

    certificate: str = ""
    client_key: str = ""
    client_certificate: str = ""


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    """Everything one signal's OTLP exporter needs, and where each value came from."""

    signal: str
    endpoint: str  # empty: this signal is not exported over OTLP (see disabled_by)
    url: str  # the HTTP URL, or the gRPC target host:port
    protocol: str
    headers: tuple[tuple[str, str], ...]
    timeout: float  # one request
    deadline: float  # one export, retries included
    compression: str
    secure: bool  # TLS (https:// or gRPC without a scheme and not insecure)
    tls: TlsSettings
    sources: tuple[tuple[str, str], ...]  # key -> "file", a variable's name, or "default"
    disabled_by: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint)

    def source(self, key: str) -> str:
        return dict(self.sources)[key]


def _variable(signal: str, key: str) -> str:
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{key.upper()}"


def _generic(key: str) -> str:
    return f"OTEL_EXPORTER_OTLP_{key.upper()}"


def _parse(var: str, key: str, raw: str) -> object:
    """A variable's value checked like the file key it stands for."""
    # signal-specific variables share their generic twin's format (milliseconds, k=v lists)
    fmt = _generic(key) if key == "timeout" else var
    try:
        meta = {**_FIELDS[key].metadata, "duration": False}
        return check_value(_HINTS[key], meta, parse_variable(fmt, _HINTS[key], raw))
    except ValueError as exc:
        raise ConfigError("environment", None, var, f"{exc} (fills exporters.otlp.{key})") from exc


def _pick(config: OtlpConfig, key: str, signal: str, explicit: frozenset[str],
          env: Mapping[str, str]) -> tuple[object, str]:
    """One key's value and its source, by the precedence in the module docstring."""
    if f"exporters.otlp.{key}" in explicit:
        return getattr(config, key), "file"
    for var in (_variable(signal, key), _generic(key)):
        if env.get(var, "").strip():
            return _parse(var, key, env[var]), var
    value = getattr(config, key)
    default = OtlpConfig()
    return value, "default" if value == getattr(default, key) else "config"


def _exporter_off(signal: str, env: Mapping[str, str]) -> tuple[str, bool]:
    """(why OTLP is off for the signal or '', whether the user asked for otlp by name)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "OTEL_SDK_DISABLED=true", False
    var = f"OTEL_{signal.upper()}_EXPORTER"
    raw = env.get(var, "").strip()
    if not raw:
        return "", False
    names = {n.strip().lower() for n in raw.split(",") if n.strip()}
    unknown = names - _KNOWN_EXPORTERS[signal]
    if unknown:
        known = ", ".join(sorted(_KNOWN_EXPORTERS[signal]))
        raise ConfigError("environment", None, var,
                          f"unknown exporter {', '.join(sorted(unknown))!r} (known: {known})")
    return ("" if "otlp" in names else f"{var}={raw}"), "otlp" in names


def _url(endpoint: str, source: str, protocol: str, path: str, insecure: bool | None,
         ) -> tuple[str, bool]:
    """(URL or gRPC target, TLS?) by the specification's endpoint rules."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https"):
        parts = urlsplit(f"//{endpoint}")  # host:port without a scheme
        if protocol != "grpc" or not parts.netloc:
            raise ValueError(f"endpoint {endpoint!r} ({source}): expected "
                             "http://host:port or https://host:port")
    if protocol == "grpc":
        secure = parts.scheme == "https" or (parts.scheme == "" and insecure is not True)
        return parts.netloc, secure
    if source.endswith(("_METRICS_ENDPOINT", "_LOGS_ENDPOINT")):
        return (endpoint if parts.path else endpoint + "/"), parts.scheme == "https"
    return endpoint.rstrip("/") + path, parts.scheme == "https"


def _where(config: OtlpConfig, signal: str, picked: dict[str, tuple[object, str]],
           env: Mapping[str, str]) -> tuple[str, str, bool, str]:
    """(endpoint, URL or target, TLS?, why off) of the signal."""
    off, asked = _exporter_off(signal, env)
    endpoint, source = str(picked["endpoint"][0]), picked["endpoint"][1]
    protocol = str(picked["protocol"][0])
    if not endpoint and asked:  # OTEL_<SIGNAL>_EXPORTER=otlp alone: the specification's default
        endpoint, source = DEFAULT_ENDPOINTS[protocol], f"OTEL_{signal.upper()}_EXPORTER"
        picked["endpoint"] = (endpoint, source)
    if off or not endpoint:
        return "", "", False, off or "no endpoint"
    path = config.metrics_path if signal == "metrics" else config.logs_path
    insecure = typing.cast("bool | None", picked["insecure"][0])
    try:
        url, secure = _url(endpoint, source, protocol, path, insecure)
    except ValueError as exc:
        raise ConfigError("environment", None, "exporters.otlp.endpoint", str(exc)) from exc
    return endpoint, url, secure, ""


def resolve(config: OtlpConfig, signal: str, explicit: frozenset[str] = frozenset(),
            env: Mapping[str, str] | None = None, deadline: float | None = None,
            ) -> ExporterSettings:
    """The settings of ``signal``'s OTLP exporter; ConfigError names a bad variable.

    ``explicit`` holds the dotted keys the file set (``LoadedConfig.explicit``);
    ``deadline`` bounds one export, retries included (OTEL_METRIC_EXPORT_TIMEOUT for
    metrics), and defaults to the request timeout.
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}: expected one of {', '.join(SIGNALS)}")
    env = env or {}
    picked = {k: _pick(config, k, signal, explicit, env) for k in KEYS}
    endpoint, url, secure, off = _where(config, signal, picked, env)
    value = {k: v for k, (v, _) in picked.items()}
    timeout = typing.cast(float, value["timeout"])
    return ExporterSettings(
        signal=signal, endpoint=endpoint, url=url, protocol=str(value["protocol"]),
        headers=tuple(typing.cast("dict[str, str]", value["headers"]).items()),
        timeout=timeout, deadline=deadline or timeout, compression=str(value["compression"]),
        secure=secure, tls=TlsSettings(str(value["certificate"]), str(value["client_key"]),
                                       str(value["client_certificate"])),
        sources=tuple((k, s) for k, (_, s) in picked.items()), disabled_by=off)


def resolve_loaded(config: AgentConfig, explicit: frozenset[str], env: Mapping[str, str],
                   signal: str) -> ExporterSettings:
    """``resolve`` for an AgentConfig: the metrics deadline is exporters.export_timeout."""
    exporters = config.exporters
    deadline = exporters.export_timeout if signal == "metrics" else None
    return resolve(exporters.otlp, signal, explicit, env, deadline)
