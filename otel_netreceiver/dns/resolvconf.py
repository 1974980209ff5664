"""What a pod's resolver waits for: ``options timeout:``/``attempts:`` of the resolv.conf its
processes see.

A DNS query counts as timed out when the client gave up on it, and the client gives up
after its own resolver's timeout (resolv.conf(5): ``timeout:n``, default 5 s, at most 30;
``attempts:n``, default 2, at most 5), which Kubernetes writes per pod (dnsConfig,
dnsPolicy). The node reads the file through the pod's first process's root
(``/proc/<pid>/root/etc/resolv.conf``), so every language is covered, not only clients
that use our SDK. glibc, musl and Go all honour these two options; a client that sets its
own timeout (Java's networkaddress.cache, a Node.js resolver option) is measured against
the file's, and late answers still show it (docs/background.md, "DNS timeouts and late
answers").

Read (one file) → parse (a pure function to a frozen value).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_ATTEMPTS = 2
MAX_TIMEOUT_S = 30.0  # glibc's RES_MAXRETRANS: larger values are clamped
MAX_ATTEMPTS = 5  # glibc's RES_MAXRETRY
MAX_BYTES = 64 * 1024  # a resolv.conf is a few hundred bytes; never read a huge file whole


@dataclass(frozen=True, slots=True)
class ResolverOptions:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    attempts: int = DEFAULT_ATTEMPTS

    @property
    def gives_up_after_s(self) -> float:
        """How long one lookup can wait in all, every nameserver and attempt tried."""
        return self.timeout_s * self.attempts * max(1, len(self.nameservers))


def _number(value: str, default: float, low: float, high: float) -> float:
    try:
        number = float(int(value))
    except ValueError:
        return default  # the resolver ignores an option it cannot read, so do we
    return min(max(number, low), high)


def parse_resolv_conf(text: str) -> ResolverOptions:
    """The resolver's view of a resolv.conf: the last ``search`` and ``options`` win, as in
    glibc's res_init; unknown lines and options are ignored."""
    servers: list[str] = []
    search: tuple[str, ...] = ()
    ndots, timeout, attempts = 1.0, DEFAULT_TIMEOUT_S, float(DEFAULT_ATTEMPTS)
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver" and values:
            servers.append(values[0])
        elif key in ("search", "domain"):
            search = tuple(values)
        elif key == "options":
            for option in values:
                name, _, value = option.partition(":")
                if name == "timeout":
                    timeout = _number(value, timeout, 1, MAX_TIMEOUT_S)
                elif name == "attempts":
                    attempts = _number(value, attempts, 1, MAX_ATTEMPTS)
                elif name == "ndots":
                    ndots = _number(value, ndots, 0, 15)
    return ResolverOptions(tuple(servers), search, int(ndots), timeout, int(attempts))


def read_resolv_conf(proc_root: str, pid: int) -> ResolverOptions | None:
    """The resolv.conf process ``pid`` sees, or None when it is gone or unreadable (a
    vanished pod is dropped quietly; the caller keeps the default timeout)."""
    path = os.path.join(proc_root, str(pid), "root", "etc", "resolv.conf")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES)
    except OSError:
        return None
    return parse_resolv_conf(data.decode("utf-8", "replace"))
