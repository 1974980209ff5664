"""otel-netreceiver SDK: DNS and socket error telemetry, correlated with the node agent.

Importing this package patches nothing and starts nothing: call
`NetReceiverInstrumentor().instrument()` (or run under `opentelemetry-instrument`).
"""

from __future__ import annotations

import os

from .answer import AgentAnswer, Evidence, Finding
from .client import CorrelationResult
from .config import SdkConfig
from .errors import Classification, Observation, classify
from .explain import Explanation
from .identity import K8sIdentity
from .instrumentor import NetReceiverInstrumentor, installed_reporter
from .report import Reporter
from .resolver import ResolverContext

__version__ = "0.1.0"  # released together with the agent: the same number (CHANGELOG.md)

__all__ = [
    "AgentAnswer", "Classification", "CorrelationResult", "Evidence", "Explanation",
    "Finding", "K8sIdentity", "NetReceiverInstrumentor", "Observation", "ResolverContext",
    "SdkConfig", "classify", "explain",
]


def explain(exc: BaseException, reporter: Reporter | None = None) -> Explanation:
    """Explain a DNS or socket error: the SDK's classification plus the agent's findings.

    Uses the installed instrumentation's client (so its cache and circuit breaker apply)
    and the answer already fetched for this very exception, if any; without
    instrumentation, a one-off client from the environment. Never raises.
    """
    try:
        reporter = reporter or installed_reporter() or Reporter.create(os.environ)
        return reporter.explain(exc)
    except Exception as failure:  # never into the application
        from .explain import build_explanation

        return build_explanation(classify(exc), CorrelationResult(
            "internal_error", f"{type(failure).__name__}: {failure}"), None, K8sIdentity())
