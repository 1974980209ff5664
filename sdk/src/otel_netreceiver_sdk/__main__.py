"""`python -m otel_netreceiver_sdk`: what the SDK would use here, and whether the agent answers.

Prints, as JSON: the settings, the resolver context, the Kubernetes identity, the agent
endpoint and its /v1/health answer. Patches nothing. Exit status 0 when the agent answered,
1 otherwise, so it serves as a pod's check that the agent's socket or port is reachable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .client import CorrelationClient, find_endpoint
from .config import config_from_env
from .identity import identity_from_env
from .resolver import read_resolver_context


def doctor(env: Mapping[str, str]) -> tuple[dict, bool]:
    """The report and whether the agent answered its health check."""
    config = config_from_env(env)
    endpoint = find_endpoint(config, env)
    health = CorrelationClient(endpoint, config).health()
    report = {
        "config": {k: str(v) for k, v in dataclasses.asdict(config).items()},
        "resolver": dataclasses.asdict(read_resolver_context(Path(config.resolv_conf), env)),
        "identity": dataclasses.asdict(identity_from_env(env)),
        "agent": {"endpoint": str(endpoint) if endpoint else None, "status": health.status,
                  "detail": health.detail},
    }
    return report, health.status == "ok"


def main() -> int:
    report, ok = doctor(os.environ)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
