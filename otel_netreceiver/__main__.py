"""``python -m otel_netreceiver`` is the same as the ``otel-netreceiver`` command."""

from __future__ import annotations

from otel_netreceiver.cli import main

raise SystemExit(main())
