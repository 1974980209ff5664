"""One resource kept in step with the API server: paged LIST, then WATCH from its version, forever.

This is client-go's reflector protocol, reduced to what the agent needs and read
as raw JSON lines (the client's model classes cost more per object than the few
fields used, and a cluster-wide watch sees every object's updates):

- LIST with ``resourceVersion=0`` (served from the API server's watch cache, not
  etcd) in pages of ``limit`` objects, following ``continue``;
- WATCH from the list's resourceVersion with ``allowWatchBookmarks``: BOOKMARK
  events only move the version on, so a watch that ends after a quiet spell
  resumes from a recent version instead of one the server has compacted away;
- a dropped or ended stream resumes from the last version seen, without a LIST;
- 410 Gone (as an HTTP status or as an ERROR event inside the stream) means that
  version has expired: LIST again, this time without ``resourceVersion=0``
  (a consistent read; the cache may be older than what was already seen), backing
  off from the second consecutive 410 so a compaction loop is not a relist storm;
- other failures back off exponentially (1 s to 60 s, with jitter) so a restarting
  API server is not stormed by every node at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 300  # the server ends each watch after this; resumed from the last version
REQUEST_TIMEOUT_S = 30.0  # connect and read deadline (a black-holed API server must not hang)
PAGE = 500  # objects per LIST page (client-go's pager default)


class Gone(Exception):
    """410: the resourceVersion we watch from has expired; list again."""


@dataclass
class ListWatchStats:
    lists: int = 0
    watches: int = 0
    errors: int = 0
    events: int = 0
    bookmarks: int = 0
    connected: bool = False
    last_error: str = ""


class ListWatcher:
    """Runs list+watch of one resource on a thread, handing objects to ``replace``/``apply``.

    ``call`` is a CoreV1Api list method (``list_node``...) bound with its selectors;
    ``replace(items)`` receives every object of a LIST, ``apply(type, object)`` each
    ADDED/MODIFIED/DELETED event.
    """

    def __init__(self, name: str, call: Callable[[Any], Callable[..., Any]],
                 api_factory: Callable[[], Any],
                 replace: Callable[[list[dict[str, Any]]], None],
                 apply: Callable[[str, dict[str, Any]], None], *,
                 rng: random.Random | None = None, backoff_base: float = 1.0,
                 request_timeout: float = REQUEST_TIMEOUT_S,
                 watch_timeout: int = WATCH_TIMEOUT_S, page: int = PAGE) -> None:
        self.name = name
        self._call, self._api_factory = call, api_factory
        self._replace, self._apply = replace, apply
        self._rng = rng or random.Random()
        self._backoff_base = backoff_base
        self._request_timeout, self._watch_timeout, self._page = (
            request_timeout, watch_timeout, page)
        self._stop = threading.Event()
        self._response: Any = None
        # the last version seen, kept across a stream that breaks mid-way: resuming from it
        # needs no LIST and replays nothing
        self.version: str | None = None
        self.stats = ListWatchStats()
        self._thread = threading.Thread(target=self._run, name=f"k8s-{name}-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:  # ends a blocked read of the stream (close() would wait for its lock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.ident is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        api, failures, gone_streak, cached = None, 0, 0, True
        events_before = 0  # a 410 can come from a LIST too (an expired continue token)
        while not self._stop.is_set():
            try:
                api = api or self._api_factory()
                if self.version is None:
                    self.version = self._list(api, cached)
                events_before = self.stats.events + self.stats.bookmarks
                self._watch(api)
                failures = 0
            except Gone:
                log.info("%s watch: resourceVersion %s expired (410); listing again",
                         self.name, self.version)
                self.version, cached = None, False
                progressed = self.stats.events + self.stats.bookmarks != events_before
                gone_streak = 1 if progressed else gone_streak + 1
                if gone_streak > 1:
                    self._stop.wait(self._backoff(gone_streak - 1))
            except Exception as exc:  # the API server, the network, a bad answer
                if self._stop.is_set():
                    break
                failures += 1
                self._record_error(exc)
                self._stop.wait(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        base = min(60.0, self._backoff_base * 2.0 ** (failures - 1))
        return base * (0.5 + self._rng.random())

    def _record_error(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.connected = False
        message = f"{type(exc).__name__}: {str(exc)[:200]}"
        if message != self.stats.last_error:
            log.warning("%s watch: %s", self.name, message)
        self.stats.last_error = message

    def _list(self, api: Any, cached: bool) -> str:
        items: list[dict[str, Any]] = []
        token, version = "", ""
        while True:
            options: dict[str, Any] = {"limit": self._page}
            if token:
                options["_continue"] = token
            elif cached:
                options["resource_version"] = "0"
            body = json.loads(self._request(api, options, self._request_timeout).data)
            items.extend(body.get("items") or ())
            meta = body.get("metadata") or {}
            version = str(meta.get("resourceVersion", ""))
            token = meta.get("continue") or ""
            if not token:
                break
        self._replace(items)
        self.stats.lists += 1
        self.stats.connected, self.stats.last_error = True, ""
        return version

    def _watch(self, api: Any) -> None:
        self.stats.watches += 1
        self._response = self._request(api, {
            "watch": True, "resource_version": self.version, "allow_watch_bookmarks": True,
            "timeout_seconds": self._watch_timeout}, self._watch_timeout + self._request_timeout)
        try:
            for event in _events(self._response):
                self._event(event)
                if self._stop.is_set():
                    break
        finally:
            self._response.release_conn()
            self._response = None

    def _request(self, api: Any, options: dict[str, Any], read_timeout: float) -> Any:
        """The raw response; the client raises ApiException on HTTP errors, 410 is Gone."""
        try:
            return self._call(api)(**options, _preload_content=False,
                                   _request_timeout=(self._request_timeout, read_timeout))
        except Exception as exc:
            if getattr(exc, "status", None) == 410:
                raise Gone(str(exc)[:200]) from exc
            raise

    def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", "expired"))
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
        self.version = str((obj.get("metadata") or {}).get("resourceVersion") or self.version)
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
            return
        self.stats.events += 1
        self.stats.connected, self.stats.last_error = True, ""
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._apply(str(kind), obj)


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """JSON watch events from a chunked stream, one per line."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
