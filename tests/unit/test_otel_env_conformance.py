"""Conformance table: every OTEL_* variable of the OTLP exporter and SDK environment specs.

Each exporter key is tried for metrics and logs: set alone (signal-specific, then
generic), in conflict with its generic twin (the signal-specific one wins) and
with the config file (the file wins). Then the SDK variables, the endpoint rules,
bad values, and the ``service.name`` precedence, cross-checked against the
OpenTelemetry SDK's own environment detector.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import OTELResourceDetector

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import ConfigError, load_text
from otel_netreceiver.export.settings import ExporterSettings, resolve_loaded
from otel_netreceiver.resource import build_resource

BASE = "http://c:4318"
# key: (signal-specific raw, its value), (generic raw, its value), (file YAML, its value)
TABLE = {
    "endpoint": (("http://sig:1/p", "http://sig:1/p"), ("http://gen:2", "http://gen:2"),
                 ("http://file:3", "http://file:3")),
    "protocol": (("grpc", "grpc"), ("grpc", "grpc"), ("http/protobuf", "http/protobuf")),
    "headers": (("a=1,b=x%20y", {"a": "1", "b": "x y"}), ("g=2", {"g": "2"}),
                ("{f: '3'}", {"f": "3"})),
    "timeout": (("2000", 2.0), ("3000", 3.0), ("4s", 4.0)),
    "compression": (("none", "none"), ("none", "none"), ("gzip", "gzip")),
    "certificate": (("/sig/ca.pem", "/sig/ca.pem"), ("/gen/ca.pem", "/gen/ca.pem"),
                    ("/file/ca.pem", "/file/ca.pem")),
    "client_key": (("/sig/k.pem", "/sig/k.pem"), ("/gen/k.pem", "/gen/k.pem"),
                   ("/file/k.pem", "/file/k.pem")),
    "client_certificate": (("/sig/c.pem", "/sig/c.pem"), ("/gen/c.pem", "/gen/c.pem"),
                           ("/file/c.pem", "/file/c.pem")),
    "insecure": (("true", True), ("TRUE", True), ("false", False)),
}


def _settings(signal: str, env: dict[str, str], yaml_otlp: str = "") -> ExporterSettings:
    text = "exporters:\n  otlp:\n" + yaml_otlp if yaml_otlp else "{}\n"
    loaded = load_text(text, env=env)
    return resolve_loaded(loaded.config, loaded.explicit, env, signal)


def _value(settings: ExporterSettings, key: str) -> object:
    if key in ("certificate", "client_key", "client_certificate"):
        return getattr(settings.tls, key)
    if key == "headers":
        return dict(settings.headers)
    if key == "insecure":
        return not settings.secure  # a scheme-less gRPC endpoint: TLS unless insecure
    return getattr(settings, key)


def _base(key: str) -> dict[str, str]:
    """What the other keys need: an endpoint (scheme-less for insecure: it only counts there)."""
    if key == "endpoint":
        return {}
    if key == "insecure":
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE}


CASES = [(s, k) for s in ("metrics", "logs") for k in TABLE]


@pytest.mark.parametrize(("signal", "key"), CASES)
def test_signal_variable_alone(signal: str, key: str) -> None:
    var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{key.upper()}"
    (raw, value), _, _ = TABLE[key]
    settings = _settings(signal, {**_base(key), var: raw})
    assert _value(settings, key) == value
    assert settings.source(key) == var
    other = "logs" if signal == "metrics" else "metrics"
    assert _settings(other, {**_base(key), var: raw}).source(key) != var  # not the other signal


@pytest.mark.parametrize(("signal", "key"), CASES)
def test_generic_variable_alone(signal: str, key: str) -> None:
    var = f"OTEL_EXPORTER_OTLP_{key.upper()}"
    _, (raw, value), _ = TABLE[key]
    settings = _settings(signal, {**_base(key), var: raw})
    assert _value(settings, key) == value
    assert settings.source(key) == var


@pytest.mark.parametrize(("signal", "key"), CASES)
def test_signal_variable_beats_its_generic_twin(signal: str, key: str) -> None:
    specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{key.upper()}"
    (raw, value), (generic_raw, _), _ = TABLE[key]
    env = {**_base(key), f"OTEL_EXPORTER_OTLP_{key.upper()}": generic_raw, specific: raw}
    if key == "insecure":
        env[f"OTEL_EXPORTER_OTLP_{key.upper()}"] = "false"
    settings = _settings(signal, env)
    assert _value(settings, key) == value
    assert settings.source(key) == specific


@pytest.mark.parametrize(("signal", "key"), CASES)
def test_file_key_beats_both_variables(signal: str, key: str) -> None:
    (raw, _), (generic_raw, _), (file_raw, value) = TABLE[key]
    env = {**_base(key), f"OTEL_EXPORTER_OTLP_{key.upper()}": generic_raw,
           f"OTEL_EXPORTER_OTLP_{signal.upper()}_{key.upper()}": raw}
    settings = _settings(signal, env, f"    {key}: {file_raw}\n")
    assert _value(settings, key) == value
    assert settings.source(key) == "file"


@pytest.mark.parametrize("signal", ["metrics", "logs"])
def test_defaults_without_any_variable(signal: str) -> None:
    settings = _settings(signal, {})
    assert not settings.enabled and settings.disabled_by == "no endpoint"
    assert {s for _, s in settings.sources} == {"default"}


# --- endpoint rules (OTLP exporter spec, "Endpoint URLs for OTLP/HTTP") ---------------------
@pytest.mark.parametrize(("env", "signal", "url", "secure"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/base/"}, "metrics",
     "http://c:4318/base/v1/metrics", False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318"}, "logs", "https://c:4318/v1/logs", True),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318"}, "metrics", "http://c:4318/", False),
    ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/x/logs"}, "logs",
     "http://c:4318/x/logs", False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "metrics",
     "c:4317", True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
      "OTEL_EXPORTER_OTLP_INSECURE": "true"}, "logs", "c:4317", False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "metrics", "c:4317", False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
      "OTEL_EXPORTER_OTLP_INSECURE": "true"}, "metrics", "c:4317", True),
])
def test_endpoint_rules(env: dict[str, str], signal: str, url: str, secure: bool) -> None:
    settings = _settings(signal, env)
    assert (settings.url, settings.secure) == (url, secure)


def test_http_endpoint_without_scheme_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"endpoint 'c:4318'.*expected http://host:port"):
        _settings("metrics", {"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"})


# --- SDK environment variables ---------------------------------------------------------------
@pytest.mark.parametrize(("env", "metrics_on", "logs_on"), [
    ({"OTEL_SDK_DISABLED": "true"}, False, False),
    ({"OTEL_SDK_DISABLED": "false"}, True, True),
    ({"OTEL_METRICS_EXPORTER": "none"}, False, True),
    ({"OTEL_LOGS_EXPORTER": "none"}, True, False),
    ({"OTEL_METRICS_EXPORTER": "console,otlp", "OTEL_LOGS_EXPORTER": "console"}, True, False),
])
def test_sdk_switches(env: dict[str, str], metrics_on: bool, logs_on: bool) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, **env}
    metrics, logs = _settings("metrics", env), _settings("logs", env)
    assert (metrics.enabled, logs.enabled) == (metrics_on, logs_on)
    for settings in (metrics, logs):  # off names the variable that turned it off
        assert settings.enabled or any(var in settings.disabled_by for var in env)


def test_sdk_disabled_wins_over_the_file_endpoint() -> None:
    settings = _settings("metrics", {"OTEL_SDK_DISABLED": "TRUE"}, f"    endpoint: {BASE}\n")
    assert not settings.enabled and settings.disabled_by == "OTEL_SDK_DISABLED=true"


@pytest.mark.parametrize(("signal", "url"), [("metrics", "http://localhost:4318/v1/metrics"),
                                             ("logs", "http://localhost:4318/v1/logs")])
def test_exporter_otlp_alone_uses_the_spec_default_endpoint(signal: str, url: str) -> None:
    settings = _settings(signal, {f"OTEL_{signal.upper()}_EXPORTER": "otlp"})
    assert settings.url == url


def test_unknown_exporter_name_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"OTEL_LOGS_EXPORTER: unknown exporter 'prometheus'"):
        _settings("logs", {"OTEL_LOGS_EXPORTER": "prometheus"})


@pytest.mark.parametrize(("var", "raw", "path", "value", "file"), [
    ("OTEL_METRIC_EXPORT_INTERVAL", "30000", ("exporters", "interval"), 30.0,
     "exporters:\n  interval: 5s\n"),
    ("OTEL_METRIC_EXPORT_TIMEOUT", "2500", ("exporters", "export_timeout"), 2.5,
     "exporters:\n  export_timeout: 1s\n"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "250", ("collectors", "events", "schedule_delay"), 0.25,
     "collectors:\n  events:\n    schedule_delay: 2s\n"),
    ("OTEL_BLRP_EXPORT_TIMEOUT", "30000", ("collectors", "events", "export_timeout"), 30.0,
     "collectors:\n  events:\n    export_timeout: 2s\n"),
    ("OTEL_BLRP_MAX_QUEUE_SIZE", "64", ("collectors", "events", "max_queue_size"), 64,
     "collectors:\n  events:\n    max_queue_size: 8\n"),
    ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "16", ("collectors", "events", "max_export_batch_size"),
     16, "collectors:\n  events:\n    max_export_batch_size: 4\n"),
])
def test_sdk_processor_and_reader_variables(var: str, raw: str, path: tuple[str, ...],
                                            value: object, file: str) -> None:
    def get(config: object) -> object:
        for part in path:
            config = getattr(config, part)
        return config

    assert get(load_text("{}\n", env={var: raw}).config) == value
    assert get(load_text(file, env={var: raw}).config) != value  # the file wins


def test_metric_export_timeout_bounds_the_metrics_export_only() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_METRIC_EXPORT_TIMEOUT": "25000",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "5000"}
    metrics, logs = _settings("metrics", env), _settings("logs", env)
    assert (metrics.timeout, metrics.deadline) == (5.0, 25.0)
    assert (logs.timeout, logs.deadline) == (5.0, 5.0)


@pytest.mark.parametrize(("var", "raw", "fragment"), [
    ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "soon", "milliseconds"),
    ("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "yes", "true or false"),
    ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json", "one of grpc"),
    ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "novalue", "key=value"),
    ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd", "one of gzip"),
])
def test_bad_values_name_the_variable(var: str, raw: str, fragment: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, var: raw}
    signal = "logs" if "_LOGS_" in var else "metrics"
    with pytest.raises(ConfigError, match=var) as info:
        _settings(signal, env)
    assert fragment in str(info.value)


# --- service.name (SDK environment spec: OTEL_SERVICE_NAME wins) -----------------------------
@pytest.mark.parametrize(("env", "file", "expected"), [
    ({"OTEL_SERVICE_NAME": "a", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}, "{}", "a"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}, "{}", "b"),
    ({"OTEL_SERVICE_NAME": "a"}, "{}", "a"),
    ({}, "{}", "otel-netreceiver"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}, "service_name: f", "f"),
    ({"OTEL_SERVICE_NAME": "a"}, "resource_attributes: {service.name: r}", "a"),
])
def test_service_name_precedence(env: dict[str, str], file: str, expected: str) -> None:
    loaded = load_text(file + "\n", env=env)
    resource = build_resource(loaded.config, env, InstanceMetadata(), loaded.explicit)
    assert resource["service.name"] == expected


@pytest.mark.parametrize("env", [
    {"OTEL_SERVICE_NAME": "a", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b,team=net"},
    {"OTEL_RESOURCE_ATTRIBUTES": "service.name=b,k8s.cluster.name=c%201"},
])
def test_resource_from_environment_agrees_with_the_sdk_detector(env, monkeypatch) -> None:
    for var in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    sdk = dict(OTELResourceDetector().detect().attributes)
    loaded = load_text("{}\n", env=env)
    ours = build_resource(loaded.config, env, InstanceMetadata(), loaded.explicit)
    assert {k: ours[k] for k in sdk} == sdk


def test_a_bad_signal_variable_is_a_configuration_error_at_load() -> None:
    """check-config, start and reload all load: none of them gets to a traceback later."""
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"):
        load_text("{}\n", env={"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "soon"})
