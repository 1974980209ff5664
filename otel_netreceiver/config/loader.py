"""Load and validate the YAML configuration against ``schema``.

YAML is composed to nodes (not loaded to dicts) so every error can name the
file, the line and the dotted key. Validation is generic over the schema's
dataclasses: adding a key to ``schema.py`` is all a new option needs.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from otel_netreceiver.config.environment import apply_environment
from otel_netreceiver.config.schema import AgentConfig


class ConfigError(ValueError):
    """A configuration problem, located: ``file:line: key: problem``."""

    def __init__(self, source: str, line: int | None, key: str, problem: str) -> None:
        self.source, self.line, self.key, self.problem = source, line, key, problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {key or '(top level)'}: {problem}")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    config: AgentConfig
    source: str
    explicit: frozenset[str]  # dotted keys the file set; environment fills the rest


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``15``, ``15s``, ``500ms``, ``2m`` or ``1h``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '15s', got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like '15s' or '500ms', got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, validate and complete (from the environment) a configuration file."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, None, "", f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(source, line, "", f"not UTF-8 text: {exc.reason} "
                          f"(byte {data[exc.start]:#04x})") from exc
    return load_text(text, source, env)


def load_text(text: str, source: str = "<config>",
              env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate configuration text; an empty document is an error, not the defaults."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = f"YAML syntax error: {exc.problem}"
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            # an unclosed bracket is only found at the end: say where it was opened
            problem += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise ConfigError(source, line, "", problem) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, "", f"YAML error: {exc}") from exc
    if node is None:
        raise ConfigError(source, None, "", "the file is empty (write `{}` for all defaults)")
    explicit: set[str] = set()
    config = _build(AgentConfig, node, "", source, explicit)
    return _checked(LoadedConfig(apply_environment(config, explicit, env or {}), source,
                                 frozenset(explicit)), env or {})


def defaults(env: Mapping[str, str] | None = None) -> LoadedConfig:
    """The embedded default configuration, completed from the environment."""
    return _checked(LoadedConfig(apply_environment(AgentConfig(), set(), env or {}),
                                 "<defaults>", frozenset()), env or {})


def _checked(loaded: LoadedConfig, env: Mapping[str, str]) -> LoadedConfig:
    """Resolve the OTLP settings of both signals once, so a bad OTEL_* variable is a
    configuration error at load (check-config, start, reload), not a traceback later."""
    from otel_netreceiver.export.settings import SIGNALS, resolve_loaded  # it imports us

    for signal in SIGNALS:
        resolve_loaded(loaded.config, loaded.explicit, env, signal)
    return loaded


def _build(cls: type, node: yaml.Node, path: str, source: str, explicit: set[str]) -> Any:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(source, _line(node), path, f"expected a mapping, got {_kind(node)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key_node, value_node in node.value:
        name = key_node.value
        dotted = f"{path}.{name}" if path else str(name)
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(source, _line(key_node), dotted, f"unknown key (known: {known})")
        if name in values:
            raise ConfigError(source, _line(key_node), dotted, "key given twice")
        values[name] = _convert(hints[name], fields[name], value_node, dotted, source, explicit)
        explicit.add(dotted)
    return cls(**values)


def _convert(hint: Any, fld: dataclasses.Field, node: yaml.Node, path: str, source: str,
             explicit: set[str]) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, node, path, source, explicit)
    try:
        value = yaml.SafeLoader("").construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ConfigError(source, _line(node), path, str(exc)) from exc
    try:
        return check_value(hint, fld.metadata, value)
    except ValueError as exc:
        raise ConfigError(source, _line(node), path, str(exc)) from exc


def check_value(hint: Any, meta: Mapping[str, Any], value: Any) -> Any:
    """Check one value against its type hint and metadata; ValueError names the problem."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if meta.get("duration"):
        value = parse_duration(value)
    value = _check_type(hint, value)
    choices = meta.get("choices") or ()
    for item in value if isinstance(value, list) else [value]:
        if choices and item not in choices:
            raise ValueError(f"unknown value {item!r}: must be one of {', '.join(choices)}")
    minimum = meta.get("minimum")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}; got {value!r}")
    check = meta.get("check")
    if check is not None:
        check(value)
    return value


def _check_type(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict) or any(isinstance(v, (dict, list)) for v in value.values()):
            raise ValueError(f"expected a mapping of names to values, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if hint is bool and not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        return f"the value {node.value!r}"
    return "a mapping"
