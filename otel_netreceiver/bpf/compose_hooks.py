"""Socket-hook probes compiled into one program per direction (docs/architecture.md,
Per-packet budget, rule 2, for cgroup_skb).

A probe whose ``ProbeSpec.finish`` is a ``SocketAttacher`` (bpf/socket_hooks.py) runs at
every packet end of every local socket, so two such probes loaded alone cost two
invocations per packet end and parse the IP header twice. ``join`` puts every such probe
of the configuration into one group; ``render_hooks`` makes one object of it: the shared
headers and #defines once (with SOCKET_HOOK_COMPOSITE, so each probe's ``SOCKET_HOOK``
makes no programs of its own), each probe's text in its own ``lost`` slot, and one egress
and one ingress entry (``onr_sock_egress``, ``onr_sock_ingress``) that parse the IP header
once (include/sockhook.h ``skb_pkt_parse``) and call each probe's handler in configuration
order. A member's tracepoint programs (its ``attach``) stay in the object as they are.
A member's event-record handlers can be compiled in too (bpf/compose.py ``Hosted``,
events/hosting.py): the member's own handler calls them where HOSTED_EVENTS_<PROBE> is
defined (dns's dns_skb calls events.c's dnsev_skb), so a packet end is still one
invocation; refused so, the loader loads the group without them and the records load
their own object (bpf/loader.py, ``bare``).
A socket-hook probe that is the only one of the configuration instead joins the probes on
its tracepoints (``adopt``: dns's NO_SOCKET handler and the default set on skb:kfree_skb,
one invocation per drop); the object then has their entry and the probe's own socket
programs. The loader tries the composite first and, if it fails, the group without the
adopted probe, then each probe alone (bpf/loader.py, ``split``). Pure except
``member_view``; no probe is named here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_netreceiver.bpf.compose import (
    SEPARATOR,
    Hosted,
    composite_spec,
    conflicts,
    hosted_defines,
    hosted_handlers,
    object_head,
    tracepoints,
)
from otel_netreceiver.bpf.programs import Formats, ProbeSpec, body
from otel_netreceiver.bpf.socket_hooks import SocketAttacher

HEADER = "sockhook.h"  # the parser and SOCKET_HOOK: include-guarded, shared by design
ENTRY = "onr_sock"  # the composite's programs: onr_sock_egress, onr_sock_ingress


def hook_of(spec: ProbeSpec) -> SocketAttacher | None:
    return spec.finish if isinstance(spec.finish, SocketAttacher) else None


def is_hook_group(group: Sequence[ProbeSpec]) -> bool:
    return len(group) > 1 and all(hook_of(s) is not None for s in group)


def join(groups: Sequence[tuple[ProbeSpec, ...]]) -> list[tuple[ProbeSpec, ...]]:
    """``groups`` (bpf/compose.py: each probe with a finish hook alone) with the socket-hook
    probes as one group, at the first one's position; a lone socket-hook probe instead joins
    the group on its tracepoints (``adopt``)."""
    hooked = tuple(g[0] for g in groups if len(g) == 1 and hook_of(g[0]) is not None)
    if len(hooked) == 1:
        return adopt(groups, hooked[0])
    if len(hooked) < 2:
        return list(groups)
    out: list[tuple[ProbeSpec, ...]] = []
    for group in groups:
        if len(group) == 1 and group[0] in hooked:
            if group[0] is hooked[0]:
                out.append(hooked)
            continue
        out.append(group)
    return out


def adopt(groups: Sequence[tuple[ProbeSpec, ...]],
          hooked: ProbeSpec) -> list[tuple[ProbeSpec, ...]]:
    """The one socket-hook probe of the configuration in the group of the probes sharing its
    tracepoints (dns's dns_no_socket on skb:kfree_skb with packetloss and tcptwrcv): one
    invocation per drop for all of them, and the object's finish is the probe's (its socket
    programs stay in the object as they are). With two socket-hook probes the hook group
    wins (one program per packet end is the larger saving) and the tracepoint stays a
    program of that object. The loader falls back to the group without it (``split``)."""
    others = [g for g in groups if g != (hooked,) and not any(s.finish for s in g)
              and any(tracepoints(hooked) & tracepoints(s) for s in g)]
    if len(others) != 1:
        return list(groups)
    merged = (*others[0], hooked)  # its handler last: the group's order is kept
    return [merged if g == others[0] else g for g in groups if g != (hooked,)]


def split(group: Sequence[ProbeSpec]) -> list[tuple[ProbeSpec, ...]]:
    """What to load when ``group``'s one object was refused: a tracepoint group that adopted
    a socket-hook probe (``adopt``) as the group without it, then the probe alone (so a
    refused socket hook costs the other probes nothing); any other group, probe by probe."""
    hooked = [s for s in group if hook_of(s) is not None]
    if is_hook_group(group) or len(hooked) != 1 or len(group) < 3:
        return [(s,) for s in group]
    rest = tuple(s for s in group if s is not hooked[0])
    return [rest, (hooked[0],)]


def hook_conflicts(group: Sequence[ProbeSpec]) -> set[str]:
    """What keeps the group from being one object: names two probes both declare (the parser
    header excepted: it declares no map), a tracepoint two probes attach to (each keeps
    its own program there), a probe without a handler for the entries to call."""
    clash = conflicts(group) - {f"header {HEADER}"}
    seen: dict[tuple[str, str], str] = {}
    for spec in group:
        hook = hook_of(spec)
        if hook is None or not hook.handler:
            clash.add(f"{spec.name}: no socket-hook handler")
    if sum(bool(h and h.tail_calls) for h in map(hook_of, group)) > 1:
        clash.add("more than one socket-hook handler tail-calls (each would end the entry)")
    for spec in group:
        for a in spec.attach:
            if seen.setdefault((a.category, a.event), spec.name) != spec.name:
                clash.add(f"tracepoint {a.category}:{a.event}")
    return clash


def hook_spec(group: Sequence[ProbeSpec]) -> ProbeSpec:
    """What the loader needs of the composite: a name, each member's tracepoint programs,
    and the finish that attaches the two entries."""
    return ProbeSpec(SEPARATOR.join(s.name for s in group), "",
                     tuple(a for s in group for a in s.attach),
                     needs_btf=any(s.needs_btf for s in group),
                     headers=tuple(dict.fromkeys(h for s in group for h in s.headers)),
                     finish=SocketAttacher(ENTRY, tail_calls=tuple(
                         t for s in group if (h := hook_of(s)) for t in h.tail_calls)))


def spec_of(group: Sequence[ProbeSpec]) -> ProbeSpec:
    """The composite spec of any group ``join`` returns: socket hooks or one tracepoint."""
    return hook_spec(group) if is_hook_group(group) else composite_spec(group)


def conflicts_of(group: Sequence[ProbeSpec]) -> set[str]:
    """Why ``group`` (from ``join``) cannot be one object; empty when it can."""
    return hook_conflicts(group) if is_hook_group(group) else conflicts(group)


def _entries(group: Sequence[ProbeSpec]) -> str:
    """The two programs: parse, copy the header to the per-CPU scratch slot
    (include/sockhook.h says why), call each handler with it."""
    hooks = [h for h in map(hook_of, group) if h is not None]
    calls = "".join(f"    {h.handler}(skb, p);\n" for h in hooks)
    # a member's tail call (at most one: hook_conflicts) after every handler, as a tail
    # call does not return; the member asks for it with skb->cb[4] (ctx memory: a flag in a
    # register would make the verifier walk the handlers after it once per value)
    tails = [t for h in hooks for t in h.tail_calls]
    if tails:
        calls = (f"    skb->cb[4] = 0;\n{calls}    if (skb->cb[4])\n"
                 f"        {tails[0][0]}.call(skb, 0);\n")
    return "\n".join(
        f"int {ENTRY}_{side}(struct __sk_buff *skb) {{\n    struct skb_pkt parsed;\n"
        f"    u32 zero = 0;\n    struct skb_pkt *p = skb_pkt_scratch.lookup(&zero);\n"
        f"    if (!p || !skb_pkt_parse(skb, {egress}, &parsed))\n        return 1;\n"
        f"    __builtin_memcpy(p, &parsed, sizeof(parsed));\n{calls}    return 1;\n}}\n"
        for side, egress in (("egress", 1), ("ingress", 0)))


def render_hooks(group: Sequence[ProbeSpec], formats: Formats, offsets: Mapping[str, Any],
                 hosted: Hosted | None = None) -> str:
    """One object for ``group`` (the module docstring); ``offsets`` holds every member's
    #defines (they agree where they overlap: one kernel, one configuration); ``hosted``,
    event handlers compiled in (bpf/compose.py ``Hosted``): a member's handler calls its
    records' handler where HOSTED_EVENTS_<PROBE> is defined (dns: counting.c's dns_skb calls
    events.c's dnsev_skb), so the entries stay the same; the records' tracepoint functions
    become static inline, called by the member's tracepoint program or not at all."""
    missing = [s.name for s in group if HEADER not in s.headers]
    if missing:
        raise ValueError(f"socket-hook probes {missing} do not include {HEADER}")
    defines = {**offsets, **hosted_defines(hosted), "LOST_SLOTS": len(group),
               "SOCKET_HOOK_COMPOSITE": 1}
    parts = object_head(group, formats, defines, hosted)
    for slot, spec in enumerate(group):
        parts.append(f"#define LOST_SLOT {slot}  // probe {spec.name}\n"
                     f"{body(spec, formats, offsets, structs=False)}\n#undef LOST_SLOT\n")
    parts.extend(hosted_handlers(hosted, formats))
    parts.append(_entries(group))
    return "\n".join(parts)


def member_view(bpf: Any) -> Any:
    """What the collector hands one member's reader: its own view where the object offers
    one (SocketHookObject.member: per-probe reader state), else the object itself."""
    member = getattr(type(bpf), "member", None)
    return bpf.member() if member is not None else bpf
