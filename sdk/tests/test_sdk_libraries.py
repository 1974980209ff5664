"""requests, httpx and aiohttp errors classify the same, against real local servers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from otel_netreceiver_sdk import classify, explain

requests = pytest.importorskip("requests", reason="test extra: pip install requests")
httpx = pytest.importorskip("httpx", reason="test extra: pip install httpx")
aiohttp = pytest.importorskip("aiohttp", reason="test extra: pip install aiohttp")

LINGER_0 = b"\x01\x00\x00\x00\x00\x00\x00\x00"


class Server:
    """A TCP listener on loopback: `reset` RSTs after the request, `silent` never answers."""

    def __init__(self, behaviour: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.behaviour, self.held = behaviour, []
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.recv(65536)
            except OSError:
                continue
            if self.behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
                conn.close()
            else:
                self.held.append(conn)  # silent: keep it open, say nothing

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _closed_url() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(params=["refused", "reset", "silent"])
def target(request) -> Iterator[tuple[str, str]]:
    if request.param == "refused":
        yield "ECONNREFUSED", _closed_url()
        return
    server = Server(request.param)
    yield ("ECONNRESET" if request.param == "reset" else "timeout"), server.url
    server.close()


def _requests(url: str) -> BaseException:
    try:
        requests.get(url, timeout=0.3)
    except requests.RequestException as exc:
        return exc
    raise AssertionError("no error")


def _httpx(url: str) -> BaseException:
    try:
        httpx.get(url, timeout=0.3)
    except httpx.HTTPError as exc:
        return exc
    raise AssertionError("no error")


def _aiohttp(url: str) -> BaseException:
    async def fetch() -> BaseException:
        timeout = aiohttp.ClientTimeout(total=0.3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                async with session.get(url) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                return exc
        raise AssertionError("no error")

    return asyncio.run(fetch())


def _httpx_async(url: str) -> BaseException:
    async def fetch() -> BaseException:
        async with httpx.AsyncClient(timeout=0.3) as client:
            try:
                await client.get(url)
            except httpx.HTTPError as exc:
                return exc
        raise AssertionError("no error")

    return asyncio.run(fetch())


CLIENTS: dict[str, Callable[[str], BaseException]] = {
    "requests": _requests, "httpx": _httpx, "httpx-async": _httpx_async, "aiohttp": _aiohttp}


@pytest.mark.parametrize("client", CLIENTS)
def test_same_classification_whichever_client(instrument, target, client) -> None:
    instrument(mode="explicit")
    expected, url = target
    exc = CLIENTS[client](url)
    c = classify(exc)
    assert (c.signal, c.error_type) == ("socket", expected), (type(exc), exc, c)
    if not (client in ("aiohttp", "httpx-async") and expected == "timeout"):
        # seen by a wrapper (asyncio's own timeouts are not socket errors)
        assert c.observation is not None and c.observation.transport == "tcp"
        assert c.observation.phase == ("connect" if expected == "ECONNREFUSED" else "read")
    explanation = explain(exc)  # the fixture's agent is absent: status, never an exception
    assert explanation.agent_status in ("unavailable", "circuit_open")
    assert explanation.verdict == "unknown"
