"""Hot reload: on SIGHUP or when the file changes, validate and apply; never lose the good config.

The file is polled (mtime, size, inode) once a second rather than watched with
inotify: a ConfigMap update replaces a symlink target, which stat sees and
which needs no extra dependency. An unchanged content hash is not re-applied.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from otel_netreceiver.config.loader import ConfigError, load_file
from otel_netreceiver.runtime.agent import Agent

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


class ConfigReloader:
    """Owns the reload decision; ``request()`` is safe to call from a signal handler."""

    def __init__(self, agent: Agent, path: str, env: Mapping[str, str],
                 poll_interval: float = 1.0) -> None:
        self._agent, self._path, self._env = agent, Path(path), dict(env)
        self._poll = poll_interval
        self._stamp = _stamp(self._path)
        self._digest = _digest(self._path)
        self._wake = threading.Event()
        self._forced = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="config-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def request(self) -> None:
        """Reload now (SIGHUP), even if the file looks unchanged."""
        self._forced = True
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            if self._stop.is_set():
                return
            stamp = _stamp(self._path)
            if self._forced or stamp != self._stamp:
                self._stamp, forced, self._forced = stamp, self._forced, False
                self.reload(forced)

    def reload(self, forced: bool = False) -> bool:
        """Apply the file if valid and changed; True when a new configuration is running."""
        digest = _digest(self._path)
        if digest and digest == self._digest and not forced:
            return False
        counters = self._agent.counters.reloads
        try:
            loaded = load_file(self._path, self._env)
        except ConfigError as exc:
            counters["rejected"] += 1
            log.error("configuration reload rejected, the previous configuration keeps running: %s",
                      exc)
            return False
        self._digest = digest
        self._agent.apply(loaded)
        counters["applied"] += 1
        log.info("configuration reloaded from %s", self._path)
        return True
