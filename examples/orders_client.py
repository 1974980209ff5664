"""A small client of an "orders" service, instrumented with otel-netreceiver-sdk.

It calls ORDERS_URL every INTERVAL seconds with the standard library's urllib. When a call
fails, `explain(exc)` says what the SDK saw (the error, how long the lookup took against
the resolver's timeout) and what the node agent saw around that moment (its findings,
advice and evidence); the same goes on the active span and into a log record.

    pip install ./sdk
    ORDERS_URL=http://orders.shop.svc.cluster.local:8080/orders python examples/orders_client.py

In a pod, the agent is found through the Downward API and the agent's socket
(sdk/README.md); `python examples/demo_node.py` runs it on this machine against a real
agent, a DNS server in another network namespace and a replayed ENA NIC (README.md).
"""

from __future__ import annotations

import os
import time
import urllib.request

from otel_netreceiver_sdk import Explanation, NetReceiverInstrumentor, explain


def report(e: Explanation) -> None:
    print(f"  verdict: {e.verdict}")
    print(f"  {e.summary}")
    for finding in e.agent.findings if e.agent else ():
        print(f"  finding {finding.rule} ({finding.severity}): {finding.advice}")
        for ev in finding.evidence:
            labels = ", ".join(f"{k}={v}" for k, v in ev.attributes)
            print(f"    evidence: {ev.signal}{{{labels}}} +{ev.delta:g} "
                  f"over {ev.window_seconds:.1f} s ({ev.scope})")


def main() -> None:
    url = os.environ.get("ORDERS_URL", "http://orders.shop.svc.cluster.local:8080/orders")
    interval = float(os.environ.get("INTERVAL", "1"))
    calls = int(os.environ.get("CALLS", "0"))  # 0: forever
    NetReceiverInstrumentor().instrument()
    n = 0
    while not calls or n < calls:
        n += 1
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
            print(f"call {n}: {response.status}, {len(body)} bytes "
                  f"in {time.monotonic() - started:.3f} s", flush=True)
        except OSError as exc:  # urllib's URLError wraps the socket.gaierror / OSError
            print(f"call {n}: failed after {time.monotonic() - started:.2f} s: {exc}")
            report(explain(exc))
        time.sleep(interval)


if __name__ == "__main__":
    main()
