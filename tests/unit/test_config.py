"""Configuration: every error names file, line and key; the environment fills gaps only."""

from __future__ import annotations

import pytest

from otel_netreceiver.config.loader import ConfigError, defaults, load_file, load_text


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(text, "agent.yaml")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("interval: soon\n", 1, "interval", "duration"),
        ("collectors:\n  ena:\n    enabeld: true\n", 3, "collectors.ena.enabeld", "unknown key"),
        ("collectors:\n  ena:\n    enabled: 3\n", 3, "collectors.ena.enabled", "true or false"),
        ("exporters:\n  otlp:\n    protocol: http/json\n", 3, "exporters.otlp.protocol",
         "one of grpc"),
        ("interval: 0.2s\n", 1, "interval", "at least 1.0"),
        ("collectors: [ena]\n", 1, "collectors", "expected a mapping"),
        ("interval: 5s\ninterval: 6s\n", 2, "interval", "given twice"),
        ("collectors:\n  ena:\n    interfaces: eth0\n", 3, "collectors.ena.interfaces",
         "list of strings"),
        ("a: [\n", 2, "", "YAML syntax error"),
        ("peers:\n  other_ranges: [10.9.0.0/16, corp]\n", 2, "peers.other_ranges",
         "'corp' is not a CIDR"),
        ("peers:\n  subnets: {10.1.0.0/33: us-east-1a}\n", 2, "peers.subnets",
         "'10.1.0.0/33' is not a CIDR"),
    ],
)
def test_errors_name_file_line_and_key(text: str, line: int, key: str, fragment: str) -> None:
    err = _error(text)
    assert err.source == "agent.yaml"
    assert err.line == line
    assert err.key == key
    assert fragment in str(err)
    assert str(err).startswith(f"agent.yaml:{line}: ")


def test_empty_file_is_an_error_not_the_defaults() -> None:
    assert "empty" in str(_error(""))


def test_unreadable_file_names_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: .*cannot read"):
        load_file(tmp_path / "missing.yaml")


def test_durations_and_explicit_keys() -> None:
    loaded = load_text("interval: 2m\nexporters:\n  otlp:\n    timeout: 500ms\n")
    assert loaded.config.interval == 120.0
    assert loaded.config.exporters.otlp.timeout == 0.5
    assert "exporters.otlp.timeout" in loaded.explicit
    assert loaded.config.collectors.ena.enabled is True  # untouched default


def test_environment_fills_unset_keys_only() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b,tenant=t1",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,k8s.cluster.name=c1",
        "OTEL_SERVICE_NAME": "netrx",
        "OTEL_METRIC_EXPORT_INTERVAL": "30000",
    }
    loaded = load_text("exporters:\n  otlp:\n    protocol: http/protobuf\n", env=env)
    cfg = loaded.config
    assert cfg.exporters.otlp.endpoint == "http://collector:4318"
    assert cfg.exporters.otlp.protocol == "http/protobuf"  # the file wins
    assert cfg.exporters.otlp.headers == {"api-key": "a b", "tenant": "t1"}
    assert cfg.resource_attributes["k8s.cluster.name"] == "c1"
    assert cfg.service_name == "netrx"
    assert cfg.exporters.interval == 30.0  # milliseconds, per the OTel spec


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_HEADERS"):
        defaults({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"})


def test_imds_disabled_by_aws_variable() -> None:
    assert defaults({"AWS_EC2_METADATA_DISABLED": "true"}).config.imds.enabled is False
    assert defaults({}).config.imds.enabled is None
