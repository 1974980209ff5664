"""The SDK's settings, from arguments or OTEL_NETRECEIVER_* environment variables.

A bad value names its variable and falls back to the default with a warning: a typo in
an environment variable must not stop the application from starting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("otel_netreceiver_sdk")

MODES = ("always", "sampled", "explicit")
DEFAULT_SOCKET = Path("/run/otel-netreceiver/api.sock")
DEFAULT_PORT = 19102
MAX_TIMEOUT_S = 0.2  # the bound on what one correlation may cost the application


@dataclass(frozen=True, slots=True)
class SdkConfig:
    """Correlation settings; the agent address is resolved by client.find_endpoint."""

    mode: str = "always"
    sample_rate: float = 0.1
    timeout_s: float = MAX_TIMEOUT_S
    window_s: int = 30
    cache_ttl_s: float = 5.0
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    agent_socket: str = ""
    agent_endpoint: str = ""
    resolv_conf: Path = field(default=Path("/etc/resolv.conf"))

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate: {self.sample_rate} is not within 0..1")
        if not 0.0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s: {self.timeout_s} is not within (0, {MAX_TIMEOUT_S}]")
        if not 1 <= self.window_s <= 300:
            raise ValueError(f"window_s: {self.window_s} is not within 1..300")
        if self.breaker_failures < 1 or self.cache_ttl_s < 0 or self.breaker_cooldown_s < 0:
            raise ValueError("breaker_failures must be >= 1, cache_ttl_s and "
                             "breaker_cooldown_s >= 0")


# environment variable -> (field, converter)
ENV_VARS: dict[str, tuple[str, type]] = {
    "OTEL_NETRECEIVER_CORRELATE": ("mode", str),
    "OTEL_NETRECEIVER_SAMPLE_RATE": ("sample_rate", float),
    "OTEL_NETRECEIVER_TIMEOUT": ("timeout_s", float),
    "OTEL_NETRECEIVER_WINDOW": ("window_s", int),
    "OTEL_NETRECEIVER_AGENT_SOCKET": ("agent_socket", str),
    "OTEL_NETRECEIVER_AGENT_ENDPOINT": ("agent_endpoint", str),
    "OTEL_NETRECEIVER_RESOLV_CONF": ("resolv_conf", Path),
}


def config_from_env(env: Mapping[str, str], **overrides: object) -> SdkConfig:
    """Settings from the environment; explicit overrides win and are not forgiven."""
    values: dict[str, object] = {}
    for var, (name, convert) in ENV_VARS.items():
        raw = env.get(var, "").strip()
        if not raw or name in overrides:
            continue
        try:
            candidate = convert(raw)
            SdkConfig(**{name: candidate})  # validates this one value
        except ValueError as exc:
            log.warning("otel-netreceiver-sdk: ignoring %s=%r (%s); using the default",
                        var, raw, exc)
            continue
        values[name] = candidate
    values.update(overrides)
    return SdkConfig(**values)  # type: ignore[arg-type]
