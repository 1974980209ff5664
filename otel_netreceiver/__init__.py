"""otel-netreceiver: a node agent that turns what the kernel and the NIC see into OTLP."""

from __future__ import annotations

__version__ = "0.1.0"
