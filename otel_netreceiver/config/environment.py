"""Fill configuration keys the file left unset from the standard environment variables.

OpenTelemetry's convention: programmatic (here: file) configuration wins,
environment variables are the defaults beneath it. The variables and their
formats are the OpenTelemetry SDK's ("OTLP Exporter Configuration",
"SDK Environment Variables") and the AWS SDKs' for IMDS.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

# Variables whose value is in milliseconds (OpenTelemetry SDK environment spec).
_MILLISECONDS = {"OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRIC_EXPORT_TIMEOUT",
                 "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                 "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_BLRP_SCHEDULE_DELAY",
                 "OTEL_BLRP_EXPORT_TIMEOUT"}


def parse_key_values(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` with percent-encoding, as W3C Baggage / OTEL_RESOURCE_ATTRIBUTES."""
    result: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected key=value pairs separated by commas, got {item.strip()!r}")
        result[unquote(name.strip())] = unquote(value.strip())
    return result


def parse_variable(var: str, hint: Any, raw: str) -> Any:
    """The typed value of one variable (ValueError names what is wrong with it).

    Booleans are ``true``/``false`` in any case, as the SDK environment specification
    says; durations are milliseconds for the variables that specification defines so.
    """
    text = raw.strip()
    if var in _MILLISECONDS:
        try:
            return float(text) / 1000.0
        except ValueError:
            raise ValueError(f"expected milliseconds as a number, got {raw!r}") from None
    if var == "AWS_EC2_METADATA_DISABLED":
        return text.lower() != "true"
    args = set(typing.get_args(hint)) - {type(None)}
    if hint is bool or args == {bool}:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {raw!r}")
        return text.lower() == "true"
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if typing.get_origin(hint) is dict:
        return parse_key_values(raw)
    return text


def apply_environment(config: Any, explicit: set[str], env: Mapping[str, str],
                      path: str = "") -> Any:
    """Return ``config`` with env-backed keys that the file did not set filled in."""
    from otel_netreceiver.config.loader import ConfigError, check_value

    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    for fld in dataclasses.fields(config):
        dotted = f"{path}.{fld.name}" if path else fld.name
        value = getattr(config, fld.name)
        if dataclasses.is_dataclass(value):
            changes[fld.name] = apply_environment(value, explicit, env, dotted)
            continue
        var = fld.metadata.get("env", "")
        if not var or dotted in explicit or not env.get(var):
            continue
        try:
            parsed = parse_variable(var, hints[fld.name], env[var])
            changes[fld.name] = check_value(hints[fld.name], {**fld.metadata, "duration": False},
                                            parsed)
        except ValueError as exc:
            raise ConfigError("environment", None, var, f"{exc} (fills {dotted})") from exc
    return dataclasses.replace(config, **changes)

