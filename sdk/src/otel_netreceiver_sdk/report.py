"""What the wrappers call: metrics always, correlation when a call failed.

Every entry point swallows its own failures (logged at debug): the application's exception
is re-raised unchanged by the wrapper whatever happens here. A thread that is already
correlating (an exporter failing inside publish, say) records metrics but does not start
another correlation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry import metrics

from .client import CorrelationClient, CorrelationRequest, CorrelationResult, find_endpoint
from .config import SdkConfig, config_from_env
from .errors import (
    OBSERVATION_ATTR,
    Observation,
    bottom_error,
    classify,
    dns_error_type,
    socket_error_type,
)
from .explain import Explanation, build_explanation, make_log_emitter, publish
from .identity import K8sIdentity, identity_from_env
from .resolver import ResolverContext, packets_lost, read_resolver_context

log = logging.getLogger("otel_netreceiver_sdk")

RESULT_ATTR = "_otel_netreceiver_result"
# Semantic conventions, dns.lookup.duration: explicit bucket boundaries advice.
DNS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
               10.0)
_SKIPPED: tuple[type[BaseException], ...] = (BlockingIOError, InterruptedError)
try:
    import ssl

    _SKIPPED += (ssl.SSLWantReadError, ssl.SSLWantWriteError)  # non-blocking TLS, not errors
except ImportError:
    pass


def is_literal(host: Any) -> bool:
    """True for hosts getaddrinfo answers without a lookup: None, IP literals."""
    if not host:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    # A hostname's last label is never all digits (RFC 3696 2), an IPv6 literal has ':'.
    return ":" in host or (host[-1].isdigit() and host.rpartition(".")[2].isdigit())


def transport_of(sock: socket.socket) -> str | None:
    """network.transport of a socket: tcp, udp, unix, or None."""
    family, kind = sock.family, sock.type
    if family == socket.AF_UNIX:
        return "unix"
    if family in (socket.AF_INET, socket.AF_INET6):
        return {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}.get(kind)
    return None


class Reporter:
    """Instruments, resolver context, identity and the correlation client of one install."""

    def __init__(self, config: SdkConfig, resolver: ResolverContext, identity: K8sIdentity,
                 client: CorrelationClient, meter: metrics.Meter, otel_logger: Any) -> None:
        self.config, self.resolver, self.identity = config, resolver, identity
        self.client, self.otel_logger = client, otel_logger
        self.dns_duration = meter.create_histogram(
            "dns.lookup.duration", unit="s", description="Duration of DNS lookups "
            "(getaddrinfo of a name); error.type set when it failed",
            explicit_bucket_boundaries_advisory=DNS_BUCKETS)
        self.socket_errors = meter.create_counter(
            "netreceiver.sdk.socket.errors", unit="{error}",
            description="Failed socket calls by errno, transport and phase")
        self._local = threading.local()
        self._random = random.Random()

    @classmethod
    def create(cls, env: Mapping[str, str], config: SdkConfig | None = None,
               meter_provider: Any = None, logger_provider: Any = None) -> Reporter:
        """Read the environment, resolv.conf and the libc once, at instrument() time."""
        config = config or config_from_env(env)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(
            "otel_netreceiver_sdk", "0.1.0")
        resolver = read_resolver_context(Path(config.resolv_conf), env)
        client = CorrelationClient(find_endpoint(config, env), config)
        return cls(config, resolver, identity_from_env(env), client, meter,
                   make_log_emitter(logger_provider))

    # -- called by the wrappers -------------------------------------------------------
    def dns_error(self, host: Any, exc: OSError, duration: float) -> None:
        try:
            error_type, lost = dns_error_type(exc), None
            if isinstance(exc, socket.gaierror):
                lost = error_type == "try_again" and packets_lost(duration, self.resolver)
                error_type = "timeout" if lost else error_type
            self.dns_duration.record(duration, {"error.type": error_type})
            obs = Observation("dns", error_type, "lookup", "udp", time.time_ns(), duration, lost)
            self._observe(exc, obs)
        except Exception:
            log.debug("otel-netreceiver-sdk: dns_error failed", exc_info=True)

    def socket_error(self, sock: socket.socket, exc: OSError, phase: str) -> None:
        if isinstance(exc, _SKIPPED) or getattr(exc, OBSERVATION_ATTR, None) is not None:
            return
        try:
            obs = Observation("socket", socket_error_type(exc), phase, transport_of(sock),
                              time.time_ns())
            self._count(obs)
            self._observe(exc, obs)
        except Exception:
            log.debug("otel-netreceiver-sdk: socket_error failed", exc_info=True)

    def socket_errno(self, sock: socket.socket, code: int, phase: str) -> None:
        """connect_ex returned an errno instead of raising: count and correlate it."""
        try:
            exc = OSError(code, os.strerror(code))
            self.socket_error(sock, exc, phase)
        except Exception:
            log.debug("otel-netreceiver-sdk: socket_errno failed", exc_info=True)

    def connection_error(self, exc: OSError) -> None:
        """create_connection failed without a wrapped connect seeing it (rare)."""
        if getattr(exc, OBSERVATION_ATTR, None) is not None or isinstance(exc, _SKIPPED):
            return
        try:
            obs = Observation("socket", socket_error_type(exc), "connect", "tcp",
                              time.time_ns())
            self._count(obs)
            self._observe(exc, obs)
        except Exception:
            log.debug("otel-netreceiver-sdk: connection_error failed", exc_info=True)

    # -- correlation -------------------------------------------------------------------
    def _count(self, obs: Observation) -> None:
        attrs = {"error.type": obs.error_type, "phase": obs.phase}
        if obs.transport:
            attrs["network.transport"] = obs.transport
        self.socket_errors.add(1, attrs)

    def _observe(self, exc: OSError, obs: Observation) -> None:
        # An exception type without __dict__: classification falls back to its errno.
        with contextlib.suppress(AttributeError):
            setattr(exc, OBSERVATION_ATTR, obs)
        mode = self.config.mode
        if mode == "explicit" or getattr(self._local, "busy", False):
            return
        if mode == "sampled" and self._random.random() >= self.config.sample_rate:
            return
        self.explain(exc)

    def _request(self, obs: Observation) -> CorrelationRequest:
        return CorrelationRequest(obs.signal, obs.error_type, obs.transport, obs.phase,
                                  obs.at_unix_nano, self.config.window_s)

    def explain(self, exc: BaseException, publish_it: bool = True) -> Explanation:
        """Classify exc, ask the agent once (reusing an earlier answer), and publish."""
        c = classify(exc)
        bottom = bottom_error(exc)
        result = getattr(bottom, RESULT_ATTR, None)
        fresh = not isinstance(result, CorrelationResult)
        if fresh and c.signal == "unknown":
            result = CorrelationResult("not_network", f"{c.exception} is not a DNS or "
                                       "socket error")
        elif fresh:
            obs = c.observation or Observation(
                c.signal, c.error_type, "lookup" if c.signal == "dns" else "", None,
                time.time_ns())
            self._local.busy = True
            try:
                result = self.client.correlate(self._request(obs))
            finally:
                self._local.busy = False
            with contextlib.suppress(AttributeError):
                setattr(bottom, RESULT_ATTR, result)
        explanation = build_explanation(c, result, self.resolver, self.identity)
        if fresh and publish_it and c.signal != "unknown":
            self._publish(explanation)
        return explanation

    def _publish(self, explanation: Explanation) -> None:
        self._local.busy = True
        try:
            publish(explanation, self.otel_logger)
        except Exception:
            log.debug("otel-netreceiver-sdk: publish failed", exc_info=True)
        finally:
            self._local.busy = False

