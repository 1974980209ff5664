"""The instrumentor on real loopback sockets: what is counted, what is restored."""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Iterator

import pytest
from otel_netreceiver_sdk import NetReceiverInstrumentor, classify
from otel_netreceiver_sdk.instrumentor import SOCKET_IO, SSL_IO, installed_reporter

ERRORS = "netreceiver.sdk.socket.errors"
_MISSING = object()


def _patched_names() -> list[tuple[object, str]]:
    names = [(socket, "getaddrinfo"), (socket, "create_connection"),
             (socket.socket, "connect_ex"), (BaseSelectorEventLoop, "sock_connect")]
    return names + [(socket.socket, n) for n in SOCKET_IO] + [(ssl.SSLSocket, n)
                                                               for n in SSL_IO]


def _state() -> dict[tuple[int, str], tuple[object, object]]:
    return {(id(owner), name): (owner.__dict__.get(name, _MISSING), getattr(owner, name))
            for owner, name in _patched_names()}


def test_uninstrument_restores_the_very_same_objects(instrument) -> None:
    before = _state()
    instrument()
    during = _state()
    assert all(during[k][1] is not before[k][1] for k in before), "everything wrapped"
    NetReceiverInstrumentor().uninstrument()  # another instance undoes it too
    after = _state()
    for key, (own, looked_up) in before.items():
        assert after[key][0] is own and after[key][1] is looked_up, key
    # socket.socket never defined connect itself: the attribute is gone again
    assert "connect" not in socket.socket.__dict__
    assert socket.socket.connect is socket.socket.__mro__[1].connect
    assert installed_reporter() is None


def test_second_instrument_is_a_no_op(instrument) -> None:
    reporter = instrument()
    wrapped = socket.getaddrinfo
    NetReceiverInstrumentor().instrument()
    assert socket.getaddrinfo is wrapped and installed_reporter() is reporter
    assert NetReceiverInstrumentor().is_instrumented_by_opentelemetry


def test_uninstrument_without_instrument_changes_nothing() -> None:
    before = _state()
    NetReceiverInstrumentor().uninstrument()
    assert _state() == before


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_refused_connect_counted_once_and_classified(instrument, telemetry) -> None:
    instrument(mode="explicit")
    port = _closed_port()
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection(("127.0.0.1", port), timeout=1)
    assert classify(info.value).error_type == "ECONNREFUSED"
    assert classify(info.value).observation.phase == "connect"
    sock = socket.socket()
    assert sock.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
    sock.close()
    key = (("error.type", "ECONNREFUSED"), ("network.transport", "tcp"), ("phase", "connect"))
    assert telemetry.counts(ERRORS) == {key: 2}


def test_reset_by_peer_on_read(instrument, telemetry, listener) -> None:
    instrument(mode="explicit")
    client = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()  # SO_LINGER 0: close sends RST
    with pytest.raises(ConnectionResetError):
        client.recv(10)
    client.close()
    key = (("error.type", "ECONNRESET"), ("network.transport", "tcp"), ("phase", "read"))
    assert telemetry.counts(ERRORS) == {key: 1}


def test_broken_pipe_on_write(instrument, telemetry, listener) -> None:
    instrument(mode="explicit")
    client = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    peer.close()  # FIN; our next data gets a RST, and in CLOSE_WAIT that is EPIPE
    with pytest.raises(BrokenPipeError):  # net/ipv4/tcp_input.c tcp_reset: CLOSE_WAIT
        for _ in range(50):
            client.sendall(b"x" * 100)
            time.sleep(0.01)
    client.close()
    key = (("error.type", "EPIPE"), ("network.transport", "tcp"), ("phase", "write"))
    assert telemetry.counts(ERRORS) == {key: 1}


def test_timeouts_tcp_and_udp(instrument, telemetry, listener) -> None:
    instrument(mode="explicit")
    client = socket.create_connection(listener.getsockname(), timeout=0.05)
    with pytest.raises(TimeoutError):
        client.recv(1)  # the peer never writes
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(0.05)
    udp.sendto(b"ping", silent.getsockname())
    with pytest.raises(TimeoutError):
        udp.recvfrom(100)  # it never answers
    for sock in (client, silent, udp):
        sock.close()
    assert telemetry.counts(ERRORS) == {
        (("error.type", "timeout"), ("network.transport", "tcp"), ("phase", "read")): 1,
        (("error.type", "timeout"), ("network.transport", "udp"), ("phase", "read")): 1}


def test_udp_port_unreachable(instrument, telemetry) -> None:
    instrument(mode="explicit")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(1)
    udp.connect(("127.0.0.1", _closed_port()))
    udp.send(b"ping")  # ICMP port unreachable comes back on loopback
    with pytest.raises(ConnectionRefusedError):
        udp.recv(100)
    udp.close()
    key = (("error.type", "ECONNREFUSED"), ("network.transport", "udp"), ("phase", "read"))
    assert telemetry.counts(ERRORS) == {key: 1}


def test_would_block_is_not_an_error(instrument, telemetry, listener) -> None:
    instrument(mode="explicit")
    client = socket.create_connection(listener.getsockname())
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(1)
    other = socket.socket()
    other.setblocking(False)
    assert other.connect_ex(listener.getsockname()) in (0, errno.EINPROGRESS)
    client.close()
    other.close()
    assert telemetry.counts(ERRORS) == {}


def test_dns_duration_only_for_names(instrument, telemetry) -> None:
    instrument(mode="explicit")
    socket.getaddrinfo("127.0.0.1", 80)
    socket.getaddrinfo("::1", 80)
    socket.getaddrinfo("localhost", 80)  # /etc/hosts: a lookup, no packet leaves
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo("localhost", "no-such-service-name", type=socket.SOCK_STREAM)
    assert classify(info.value).error_type == "service_not_found"
    counts = telemetry.counts("dns.lookup.duration")
    assert counts == {(): 1, (("error.type", "service_not_found"),): 1}
    point = telemetry.points("dns.lookup.duration")[0][1]
    assert list(point.explicit_bounds)[:3] == [0.005, 0.01, 0.025]
    assert list(point.explicit_bounds)[-1] == 10.0


def test_agent_failure_is_not_counted_and_does_not_recurse(instrument, telemetry) -> None:
    """The client's own refused connect goes around the wrappers: one error, one request."""
    reporter = instrument(mode="always", agent_endpoint=f"http://127.0.0.1:{_closed_port()}",
                          agent_socket="")
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection(("127.0.0.1", _closed_port()), timeout=1)
    assert reporter.client.requests_sent == 1
    key = (("error.type", "ECONNREFUSED"), ("network.transport", "tcp"), ("phase", "connect"))
    assert telemetry.counts(ERRORS) == {key: 1}
    from otel_netreceiver_sdk import explain

    explanation = explain(info.value)
    assert explanation.agent_status == "unavailable"
    assert "ConnectionRefusedError" in explanation.agent_detail
    assert reporter.client.requests_sent == 1  # the answer was kept on the exception


def test_connect_timeout_against_a_full_accept_queue(instrument, telemetry) -> None:
    """A listener that never accepts: once its queue is full the kernel drops SYNs
    (net/ipv4/tcp_input.c tcp_conn_request: sk_acceptq_is_full -> drop, LISTENOVERFLOWS)."""
    instrument(mode="explicit")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    queued = [socket.create_connection(server.getsockname(), timeout=1) for _ in range(1)]
    with pytest.raises(TimeoutError) as info:
        socket.create_connection(server.getsockname(), timeout=0.2)
    assert classify(info.value).error_type == "timeout"
    for sock in [*queued, server]:
        sock.close()
    key = (("error.type", "timeout"), ("network.transport", "tcp"), ("phase", "connect"))
    assert telemetry.counts(ERRORS) == {key: 1}


def test_uninstrument_leaves_a_later_wrapper_alone(instrument) -> None:
    before = _state()
    instrument()
    ours = socket.getaddrinfo

    def foreign(*args, **kwargs):  # another library wrapping over ours
        return ours(*args, **kwargs)

    socket.getaddrinfo = foreign
    try:
        NetReceiverInstrumentor().uninstrument()
        assert socket.getaddrinfo is foreign  # not clobbered
        after = _state()
        for key, value in before.items():
            if key != (id(socket), "getaddrinfo"):
                assert after[key] == value, key
    finally:
        socket.getaddrinfo = before[(id(socket), "getaddrinfo")][0]


def test_tls_handshake_reset_is_counted_once(instrument, telemetry, listener) -> None:
    """ssl.SSLSocket's Python methods are wrapped too; the reset surfaces in
    do_handshake (and its inner calls) but is counted once."""
    instrument(mode="explicit")
    raw = socket.create_connection(listener.getsockname(), timeout=2)
    peer, _ = listener.accept()
    context = ssl.create_default_context()

    def reset_after_hello() -> None:
        peer.recv(4096)  # the ClientHello
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
        peer.close()

    thread = threading.Thread(target=reset_after_hello)
    thread.start()
    with pytest.raises(ConnectionResetError) as info:
        context.wrap_socket(raw, server_hostname="peer.test")
    thread.join()
    raw.close()
    assert classify(info.value).observation.phase == "connect"
    key = (("error.type", "ECONNRESET"), ("network.transport", "tcp"), ("phase", "connect"))
    assert telemetry.counts(ERRORS) == {key: 1}
