"""The node API under abuse: slow clients, floods, malformed and oversized requests.

A real NodeApi over TCP and its Unix socket, answering from a real History. Callers are
told apart by address: the flood and the slow clients come from loopback addresses the
identifier maps to pods "flood-N"; the well-behaved caller is another pod. What must
hold: the well-behaved pod is still answered (within its client's 5 s timeout) while the
others misbehave, gets only its own data, and the listener survives all of it.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter

import pytest

from otel_netreceiver.catalogue import metric
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.k8s.directory import PodMeta
from otel_netreceiver.model import Point, attrs
from otel_netreceiver.nodeapi.callers import CallerIdentifier
from otel_netreceiver.nodeapi.correlate import Correlator
from otel_netreceiver.nodeapi.server import ApiContext, NodeApi
from otel_netreceiver.ratelimit import KeyedLimiter
from tests.support.soak import record, scaled

pytestmark = pytest.mark.soak
GOOD = "127.0.0.2"  # the well-behaved pod; 127.0.1.N are the flooding pods


def _pods(ip: str) -> PodMeta | None:
    if ip == GOOD:
        return PodMeta("uid-good", "good", "shop", ip, ips=(ip,))
    if ip.startswith("127.0.1."):
        return PodMeta(f"uid-flood-{ip}", f"flood-{ip}", "shop", ip, ips=(ip,))
    return None


@pytest.fixture
def api():
    history = History(300, metric_names())
    now = time.time_ns()
    secret = attrs({"k8s.pod.uid": "uid-flood-127.0.1.1", "k8s.pod.name": "secret-pod",
                    "netns.kind": "pod"})
    rcvbuf = metric("netreceiver.udp.rcvbuf_errors")
    history.record([Point(rcvbuf, secret, 0)], now - 20 * 10**9)
    history.record([Point(rcvbuf, secret, 900)], now - 10**9)
    source = HistorySource(history)
    correlator = Correlator(RULES, source, "node-1", pods=source)
    outcomes: Counter[str] = Counter()
    ctx = ApiContext(CallerIdentifier("/proc", lambda uid: None, _pods, addresses=set),
                     KeyedLimiter(5, 10), correlator, correlator.diagnose, "node-1",
                     threading.BoundedSemaphore(32), outcomes, threading.Lock())
    server = NodeApi(ctx, "127.0.0.1", 0, "")
    # 127.0.0.1 is the listener; callers bind their own 127.x source addresses
    server.start()
    yield server, outcomes
    server.shutdown()


def _ask(port: int, source: str, body: bytes = b'{"signal": "dns"}') -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("POST", "/v1/correlate", body=body)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _slow_client(port: int, source: str, stop: threading.Event) -> None:
    """Connects and sends half a request line, then nothing (the server must cut it off)."""
    while not stop.is_set():
        with socket.socket() as sock:
            sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"POST /v1/corr")
            stop.wait(3)


def _hog(port: int, source: str, stop: threading.Event, held: list) -> None:
    """One pod opening many connections at once and sending nothing (PER_ADDRESS caps it)."""
    for _ in range(12):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        held.append(sock)
    stop.wait()
    for sock in held:
        sock.close()


def _flood(port: int, source: str, stop: threading.Event, sent: Counter) -> None:
    bad = [b'{"signal": "dns"}', b"{not json", b"x" * 20000, b'{"signal": 7}']
    i = 0
    while not stop.is_set():
        try:
            status, _ = _ask(port, source, bad[i % len(bad)])
            sent[status] += 1
        except OSError:
            sent["error"] += 1
        i += 1


def test_a_pod_is_answered_while_others_flood_and_stall(api):
    server, outcomes = api
    port = server.tcp_port
    stop, sent = threading.Event(), Counter()
    threads = [threading.Thread(target=_slow_client, args=(port, f"127.0.1.{i}", stop))
               for i in range(1, 21)]
    threads += [threading.Thread(target=_flood, args=(port, f"127.0.1.{i}", stop, sent))
                for i in range(30, 36)]
    threads.append(threading.Thread(target=_hog, args=(port, "127.0.1.99", stop, [])))
    for t in threads:
        t.start()
    time.sleep(0.5)  # the stalls are in place before the good pod asks
    answered, attempts, slowest = 0, 0, 0.0
    deadline = time.monotonic() + scaled(10, 300)
    try:
        while time.monotonic() < deadline:
            started, attempts = time.monotonic(), attempts + 1
            try:
                status, text = _ask(port, GOOD)
            except OSError:
                status, text = 0, ""
            if status == 200:
                answered += 1
                doc = json.loads(text)
                assert doc["caller"]["k8s.pod.uid"] == "uid-good"
                assert "secret-pod" not in text and "uid-flood" not in text
                slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.25)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    record("node API abuse", seconds=scaled(10, 300), good_answered=answered,
           good_asked=attempts, slowest_good_s=round(slowest, 3), flood_replies=dict(sent),
           outcomes=dict(outcomes))
    # the good pod asks 4 times a second, under its own bucket (5/s): 20 stalling pods hold
    # at most 4 connections each out of 32, so every one of its questions is answered
    assert answered == attempts > 0
    assert sent[429] > 0 and sent[413] + sent[400] > 0  # the flood was limited and refused
    assert outcomes["ok"] >= answered
    assert outcomes["busy"] >= 8  # the hog's connections past PER_ADDRESS were turned away
    assert _ask(port, GOOD)[0] in (200, 429)  # the listener survived
