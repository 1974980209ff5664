"""The SDK's cost on successful calls: instrumented versus plain, in the same process.

Why: the SDK wraps every getaddrinfo, connect, send and recv of the application; the
issue's goal is under 1.1x for calls that succeed (all the SDK's work happens when a call
fails). Times, on loopback only:

- getaddrinfo of a numeric host ("127.0.0.1": no lookup, no histogram point) and of
  "localhost" (/etc/hosts: a real lookup, one dns.lookup.duration point);
- connect: socket(), connect() to a loopback listener, accept(), close both;
- send/recv: 64 bytes sent on one end of a loopback TCP connection, received on the other.

Each case runs with the OpenTelemetry API's no-op meter (what an app without the SDK gets)
and with the OpenTelemetry SDK's MeterProvider (a real histogram/counter aggregation), if
installed. Plain and instrumented rounds alternate; the figure is the best round's CPU time per
call (the least disturbed by other processes on this shared machine).

    python bench/bench_sdk.py [--calls 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from otel_netreceiver_sdk import NetReceiverInstrumentor, SdkConfig


def _per_call(fn: Callable[[], object], calls: int) -> float:
    """CPU seconds per call (this process, user + system): other processes on the two
    shared cores lengthen wall time, not this."""
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def _cases(listener: socket.socket, a: socket.socket, b: socket.socket) -> dict[str, Callable]:
    address, buf, payload = listener.getsockname(), bytearray(64), b"x" * 64

    def connect() -> None:
        client = socket.socket()
        client.connect(address)
        conn, _ = listener.accept()
        conn.close()
        client.close()

    def send_recv() -> None:
        a.send(payload)
        b.recv_into(buf)

    return {
        "getaddrinfo('127.0.0.1')": lambda: socket.getaddrinfo("127.0.0.1", 80),
        "getaddrinfo('localhost')": lambda: socket.getaddrinfo("localhost", 80),
        "connect+accept+close": connect,
        "send+recv 64 B": send_recv,
    }


# Share of --calls per batch: the slower cases run fewer calls per round.
BATCH = {"getaddrinfo('127.0.0.1')": 0.2, "getaddrinfo('localhost')": 0.1,
         "connect+accept+close": 0.05, "send+recv 64 B": 0.5}


def _record_cost(meter_provider: object, calls: int, rounds: int) -> float:
    """The meter's own Histogram.record, the floor of any per-lookup histogram."""
    histogram = meter_provider.get_meter("bench").create_histogram("bench.h")
    return min(_per_call(lambda: histogram.record(0.01), calls) for _ in range(rounds))


def _bench(meter_provider: object | None, calls: int, rounds: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    instrumentor = NetReceiverInstrumentor()
    config = SdkConfig(agent_socket=str(Path(tempfile.gettempdir()) / "bench-no-agent.sock"))
    best: dict[tuple[str, bool], float] = {}
    for _ in range(rounds):
        for instrumented in (False, True):
            if instrumented:
                instrumentor.instrument(config=config, env={}, meter_provider=meter_provider)
            try:
                for name, fn in _cases(listener, a, b).items():
                    t = _per_call(fn, max(1, int(calls * BATCH[name])))
                    best[name, instrumented] = min(best.get((name, instrumented), t), t)
            finally:
                instrumentor.uninstrument()
    for sock in (a, b, listener):
        sock.close()
    for name in dict.fromkeys(name for name, _ in best):
        plain, wrapped = best[name, False], best[name, True]
        print(f"  {name:26} plain {plain * 1e6:8.2f} us   instrumented {wrapped * 1e6:8.2f} us"
              f"   ratio {wrapped / plain:5.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print("OpenTelemetry API only (no-op meter):")
    _bench(None, args.calls, args.rounds)
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        print("opentelemetry-sdk not installed: SDK meter case skipped")
        return
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    print("OpenTelemetry SDK MeterProvider (real aggregation):")
    _bench(provider, args.calls, args.rounds)
    print(f"  (the SDK's Histogram.record alone: "
          f"{_record_cost(provider, args.calls, args.rounds) * 1e6:.2f} us per point)")
    provider.shutdown()


if __name__ == "__main__":
    main()
