"""The exporter protocol and the result of one export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from otel_netreceiver.model import Snapshot


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What one export did: how much it sent, or why it failed."""

    ok: bool
    points: int = 0
    encoded_bytes: int = 0
    error: str = ""


class Exporter(Protocol):
    """Pushes snapshots somewhere. Must return within its own timeout and never raise."""

    name: str

    def export(self, snapshot: Snapshot) -> ExportResult: ...

    def shutdown(self) -> None: ...
