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
installed. Plain and instrumented rounds alternate; printed: the best round's CPU time per
call of each (the least disturbed by other processes on this shared machine), their ratio,
and the median of the per-round ratios (each pair measured back to back).

    python bench/bench_sdk.py [--calls 20000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
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


def _rounds(meter_provider: object | None, calls: int,
            rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per case, per round: (plain, instrumented) seconds per call, measured back to back."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    instrumentor = NetReceiverInstrumentor()
    config = SdkConfig(agent_socket=str(Path(tempfile.gettempdir()) / "bench-no-agent.sock"))
    pairs: dict[str, list[tuple[float, float]]] = {}
    try:
        for _ in range(rounds):
            plain = {n: _per_call(fn, max(1, int(calls * BATCH[n])))
                     for n, fn in _cases(listener, a, b).items()}
            instrumentor.instrument(config=config, env={}, meter_provider=meter_provider)
            try:
                for name, fn in _cases(listener, a, b).items():
                    wrapped = _per_call(fn, max(1, int(calls * BATCH[name])))
                    pairs.setdefault(name, []).append((plain[name], wrapped))
            finally:
                instrumentor.uninstrument()
    finally:
        for sock in (a, b, listener):
            sock.close()
    return pairs


def _bench(meter_provider: object | None, calls: int, rounds: int) -> None:
    for name, rows in _rounds(meter_provider, calls, rounds).items():
        plain, wrapped = min(p for p, _ in rows), min(w for _, w in rows)
        paired = statistics.median(w / p for p, w in rows)
        print(f"  {name:26} plain {plain * 1e6:7.2f} us  instrumented {wrapped * 1e6:7.2f} us"
              f"  ratio of bests {wrapped / plain:5.3f}x  median paired {paired:5.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=20)
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
