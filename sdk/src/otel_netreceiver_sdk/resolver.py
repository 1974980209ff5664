"""The stub resolver's configuration, read once, and what a lookup's duration says.

A failed lookup that took (close to) a whole multiple of the resolver's per-try timeout
got no answer at all: its packets were lost (dropped by the ENI's link-local limit, by
conntrack, or by a dead server), which is not the same as a server that answered SERVFAIL.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

# glibc defaults and caps: resolv/resolv.h (RES_TIMEOUT 5, RES_DFLRETRY 2, RES_MAXNDOTS 15,
# RES_MAXRETRANS 30, RES_MAXRETRY 5); musl uses the same defaults (src/network/resolvconf.c).
DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS, DEFAULT_NDOTS = 5, 2, 1
MAX_TIMEOUT, MAX_ATTEMPTS, MAX_NDOTS = 30, 5, 15
MAX_NAMESERVERS = 3  # MAXNS: further nameserver lines are ignored by both libcs


@dataclass(frozen=True, slots=True)
class ResolverContext:
    """What getaddrinfo will do, as far as resolv.conf and the libc tell."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = DEFAULT_NDOTS
    timeout_s: int = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    libc: str = "unknown"  # glibc | musl | unknown
    libc_version: str = ""
    source: str = ""
    problems: tuple[str, ...] = ()  # "file:line: problem", never raised


def _option(value: str, cap: int) -> int | None:
    return min(int(value), cap) if value.isdigit() else None


def _apply_options(ctx: ResolverContext, words: list[str], where: str) -> ResolverContext:
    problems = list(ctx.problems)
    changes: dict[str, int] = {}
    for word in words:
        key, _, value = word.partition(":")
        field = {"ndots": ("ndots", MAX_NDOTS), "timeout": ("timeout_s", MAX_TIMEOUT),
                 "attempts": ("attempts", MAX_ATTEMPTS)}.get(key)
        if field is None:
            continue  # rotate, edns0, single-request...: irrelevant to timing
        number = _option(value, field[1])
        if number is None:
            problems.append(f"{where}: option {key!r} needs a number, got {value!r}")
        else:
            changes[field[0]] = number
    return replace(ctx, problems=tuple(problems), **changes)


def parse_resolv_conf(text: str, source: str = "resolv.conf") -> ResolverContext:
    """Parse resolv.conf text (pure). Unknown lines are ignored as the libcs do."""
    ctx = ResolverContext(source=source)
    servers: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        where = f"{source}:{number}"
        keyword, args = words[0], words[1:]
        if keyword == "nameserver":
            if len(args) != 1:
                ctx = replace(ctx, problems=(*ctx.problems, f"{where}: nameserver needs "
                                             f"one address, got {len(args)}"))
            elif len(servers) < MAX_NAMESERVERS:
                servers.append(args[0])
        elif keyword in ("search", "domain"):
            ctx = replace(ctx, search=tuple(args))  # the last one wins in both libcs
        elif keyword == "options":
            ctx = _apply_options(ctx, args, where)
    return replace(ctx, nameservers=tuple(servers))


def apply_environment(ctx: ResolverContext, env: Mapping[str, str]) -> ResolverContext:
    """LOCALDOMAIN and RES_OPTIONS override the file (glibc resolv/res_init.c)."""
    if env.get("LOCALDOMAIN"):
        ctx = replace(ctx, search=tuple(env["LOCALDOMAIN"].split()))
    if env.get("RES_OPTIONS"):
        ctx = _apply_options(ctx, env["RES_OPTIONS"].split(), "RES_OPTIONS")
    return ctx


def detect_libc(root: Path = Path("/")) -> tuple[str, str]:
    """(flavour, version): glibc from confstr/libc_ver, musl from its dynamic loader."""
    try:
        gnu = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        gnu = ""
    if gnu.startswith("glibc"):
        return "glibc", gnu.partition(" ")[2]
    name, version = platform.libc_ver()
    if name in ("glibc", "musl"):
        return name, version
    lib = root / "lib"
    if lib.is_dir() and any(p.name.startswith("ld-musl-") for p in lib.iterdir()):
        return "musl", ""
    return "unknown", ""


def read_resolver_context(path: Path = Path("/etc/resolv.conf"),
                          env: Mapping[str, str] | None = None,
                          root: Path = Path("/")) -> ResolverContext:
    """Read resolv.conf and the libc once; a missing file gives the libc defaults."""
    try:
        ctx = parse_resolv_conf(path.read_text(errors="replace"), str(path))
    except OSError as exc:
        ctx = ResolverContext(source=str(path),
                              problems=(f"{path}: cannot read: {exc.strerror or exc}",))
    if not ctx.nameservers:
        ctx = replace(ctx, nameservers=("127.0.0.1",))  # both libcs fall back to localhost
    ctx = apply_environment(ctx, os.environ if env is None else env)
    libc, version = detect_libc(root)
    return replace(ctx, libc=libc, libc_version=version)


def packets_lost(duration_s: float, ctx: ResolverContext, tolerance_s: float = 0.2) -> bool:
    """True when a failed lookup's duration sits at a multiple of the per-try timeout.

    No answer came for each try: glibc waits `timeout` per try (res_send.c send_dg), musl
    spreads `attempts` retries over one `timeout` (lookup_name.c). A server that answered
    SERVFAIL or NXDOMAIN returns in milliseconds, far from any multiple.
    """
    timeout = float(ctx.timeout_s)
    if timeout <= 0 or duration_s < timeout - tolerance_s:
        return False
    tries = max(1, ctx.attempts) * max(1, len(ctx.nameservers)) * (1 + len(ctx.search))
    multiple = round(duration_s / timeout)
    tolerance = max(tolerance_s, 0.05 * duration_s)
    return 1 <= multiple <= tries * 2 and abs(duration_s - multiple * timeout) <= tolerance
