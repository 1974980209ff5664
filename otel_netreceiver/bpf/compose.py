"""Probes sharing a tracepoint compiled into one program (docs/architecture.md, Per-packet
budget, rule 2: one program per tracepoint and purpose).

An invocation of a classic tracepoint program costs more than almost anything its body
does, so two probes on ``skb:kfree_skb`` as two objects cost two invocations per drop.
``groups`` puts the probes that share a tracepoint together; ``render_composite`` makes
one object of a group: the shared headers and #defines once, each tracepoint struct once
(with every field its probes read), each probe's text with its handlers made static
inline functions, and one entry per tracepoint calling the handlers of every probe on it.
The loader tries the composite first; if the kernel or compiler refuses it, each probe is
loaded alone, so a probe the kernel refuses still costs only that probe (bpf/loader.py).

A probe's event-record handler (its ``events`` spec, on the same tracepoints) can join the
object too (``Hosted``: events/hosting.py decides when): a drop then costs one invocation
for its counters and its record, not two. The event handlers run after every counting
handler of the tracepoint, and their maps (the perf buffer, the budget window, the
suppressed and failed counts) are the same maps an event object alone has.
With ``tp_btf`` (the loader's first try where bpf/tp_btf.py ``plan`` allows it) each entry
takes the tracepoint's typed arguments (``u64 *ctx``) and builds the same struct the
handlers read from them (bpf/tp_btf.py ``EVENTS``), with the context in ``onr_ctx`` for
perf_submit; the handlers keep their code and only the namespace reads change (include/
netns.h, ONR_TP_BTF).
Pure: tested without loading.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_netreceiver.bpf.programs import (
    Attach,
    Formats,
    ProbeSpec,
    StructSpec,
    body,
    prelude,
    render_struct_of,
    source,
)
from otel_netreceiver.bpf.socket_hooks import SocketAttacher
from otel_netreceiver.bpf.tp_btf import field_sources

SEPARATOR = "+"


@dataclass(frozen=True, slots=True)
class Hosted:
    """Event handlers compiled into a counting object: their specs, the header they share
    (once per object), their #defines, and how each one's text is rendered (without the
    tracepoint structs, which the object renders once with every field)."""

    specs: tuple[ProbeSpec, ...]
    header: str
    defines: Mapping[str, Any]
    body: Callable[[ProbeSpec, Formats], str]


def tracepoints(spec: ProbeSpec) -> set[tuple[str, str]]:
    return {(a.category, a.event) for a in spec.attach}


def groups(specs: Sequence[ProbeSpec]) -> list[tuple[ProbeSpec, ...]]:
    """The specs in order, those sharing a tracepoint (directly or through another) together
    (not those with a ``finish`` hook); a group's position is that of its first member."""
    out: list[list[ProbeSpec]] = []
    for spec in specs:
        # a probe with hooks that are not tracepoints (``finish``) is loaded alone: its
        # finish step needs its own object
        joined = [g for g in out if spec.finish is None and not any(m.finish for m in g)
                  and any(tracepoints(spec) & tracepoints(m) for m in g)]
        merged = [m for g in joined for m in g] + [spec]
        out = [g for g in out if g not in joined]
        out.append(sorted(merged, key=list(specs).index))
    return sorted((tuple(g) for g in out), key=lambda g: list(specs).index(g[0]))


# names a probe's C declares at file scope: maps, structs, functions, macros
_DECLARED = re.compile(r"^(?:BPF_\w+\((?:\"\w+\", *[^,]+, *[^,]+, *)?(\w+)|struct (\w+) *\{"
                       r"|static [^(=]*?(\w+)\(|#define (\w+))", re.M)


def declared(spec: ProbeSpec) -> set[str]:
    """What the probe's text declares, and its extra headers (whose maps it would share)."""
    names = {next(g for g in m.groups() if g) for m in _DECLARED.finditer(source(spec))}
    return names | {f"header {h}" for h in spec.headers}


def conflicts(group: Sequence[ProbeSpec]) -> set[str]:
    """Names two probes of the group both declare: one object cannot hold both (a shared
    header would even merge their maps silently), so such a group is loaded probe by probe."""
    seen: dict[str, str] = {}
    clash = set()
    for spec in group:
        for name in declared(spec):
            if seen.setdefault(name, spec.name) != spec.name:
                clash.add(name)
    return clash


def entry_name(category: str, event: str) -> str:
    # not bcc's auto-attached ``tracepoint__`` prefix: the loader attaches it by name
    return f"onr_{category}_{event}"


def composite_spec(group: Sequence[ProbeSpec]) -> ProbeSpec:
    """What the loader needs of the composite: a name, every tracepoint once (its entry)."""
    seen = dict.fromkeys((a.category, a.event) for s in group for a in s.attach)
    # at most one member has a finish hook (bpf/compose_hooks.py adopt): the object's
    finish = next((s.finish for s in group if s.finish is not None), None)
    return ProbeSpec(SEPARATOR.join(s.name for s in group), "",
                     tuple(Attach(c, e, entry_name(c, e)) for c, e in seen),
                     needs_btf=any(s.needs_btf for s in group),
                     headers=tuple(dict.fromkeys(h for s in group for h in s.headers)),
                     finish=finish)


def members(name: str) -> tuple[str, ...]:
    return tuple(name.split(SEPARATOR))


def _by_name(group: Sequence[ProbeSpec]) -> dict[str, list[StructSpec]]:
    by_name: dict[str, list[StructSpec]] = {}
    for spec in group:
        for struct in spec.structs:
            by_name.setdefault(struct.struct_name, []).append(struct)
    return by_name


def _fields(same: Sequence[StructSpec], formats: Formats) -> tuple[str, ...]:
    """The fields of one struct name: the first spec's own, optional ones the kernel has,
    and those the other specs on the same tracepoint read."""
    fmt = formats[(same[0].category, same[0].event)]
    return tuple(dict.fromkeys(
        (*same[0].fields, *(f for s in same for f in (*s.fields, *s.optional)
                            if (s.category, s.event) == (same[0].category, same[0].event)
                            and fmt.field(f)))))


def structs_of(group: Sequence[ProbeSpec], formats: Formats, tp_btf: bool = False) -> str:
    """Each struct name once, with the fields every probe of the group reads from it (and,
    for a tp_btf entry, the program context it copies the fields from)."""
    out = []
    for same in _by_name(group).values():
        text = render_struct_of(same[0], formats, _fields(same, formats)[len(same[0].fields):])
        if tp_btf:
            text = text.removesuffix("};") + "    void *onr_ctx;\n};"
        out.append(text)
    return "\n".join(out) + "\n"


def handlers_static(text: str, spec: ProbeSpec) -> str:
    """The probe's tracepoint functions as static inline functions the entries call (each
    definition of one: events.c has one per branch of an #ifdef)."""
    for attach in spec.attach:
        text, count = re.subn(rf"^int {attach.function}\(",
                              f"static __always_inline int {attach.function}(", text,
                              flags=re.M)
        if count == 0 and f"static __always_inline int {attach.function}(" not in text:
            raise ValueError(f"probe {spec.name}: no 'int {attach.function}(' to call")
    return text


def _entries(group: Sequence[ProbeSpec], formats: Formats, tp_btf: bool = False) -> str:
    """One entry per tracepoint calling every handler on it, counting ones first."""
    calls: dict[tuple[str, str], list[str]] = {}
    for spec in group:
        for a in spec.attach:
            calls.setdefault((a.category, a.event), []).append(a.function)
    out = []
    for (category, event), functions in calls.items():
        lines = "".join(f"    {fn}(args);\n" for fn in dict.fromkeys(functions))
        head = f"int {entry_name(category, event)}(void *args) {{\n"
        if tp_btf:
            head = _tp_btf_head(group, formats, category, event)
        out.append(f"{head}{lines}    return 0;\n}}\n")
    return "\n".join(out)


def _tp_btf_head(group: Sequence[ProbeSpec], formats: Formats, category: str,
                 event: str) -> str:
    """A tp_btf entry's start: the classic record's fields copied from the typed arguments
    into the struct the handlers take (bpf/tp_btf.py ``EVENTS`` says from where)."""
    same = next(v for v in _by_name(group).values()
                if (v[0].category, v[0].event) == (category, event))
    copies = "".join(f"    a.{f} = {expr};\n"
                     for f, expr in field_sources(category, event, _fields(same, formats)))
    return (f"int {entry_name(category, event)}(u64 *ctx) {{\n"
            f"    struct {same[0].struct_name} a = {{}};\n{copies}    a.onr_ctx = ctx;\n"
            f"    struct {same[0].struct_name} *args = &a;\n")


def hosted_fits(counting: ProbeSpec, events: ProbeSpec) -> bool:
    """An event handler can join its counting probe's object when it hooks only tracepoints
    the counting probe has (the object's entries) and neither has a ``finish`` hook; or
    when both are socket hooks (bpf/socket_hooks.py): the counting text then calls the
    event handler itself where HOSTED_EVENTS_<PROBE> is defined (dns: counting.c's dns_skb
    calls events.c's dnsev_skb), and the object's finish is the counting probe's, or the
    socket-hook composite's (bpf/compose_hooks.py ``render_hooks``)."""
    if not tracepoints(events) <= tracepoints(counting):
        return False
    if counting.finish is None and events.finish is None:
        return True
    return all(isinstance(s.finish, SocketAttacher) for s in (counting, events))


def hosted_defines(hosted: Hosted | None) -> dict[str, Any]:
    """The #defines an object with ``hosted`` event handlers adds: theirs, and
    HOSTED_EVENTS_<PROBE> for each (a counting text calls its records' handler there)."""
    if hosted is None:
        return {}
    return {**hosted.defines, **{f"HOSTED_EVENTS_{e.name.upper()}": 1 for e in hosted.specs}}


def object_head(group: Sequence[ProbeSpec], formats: Formats, defines: Mapping[str, Any],
                hosted: Hosted | None, tp_btf: bool = False) -> list[str]:
    """What an object of ``group`` (and its hosted event handlers) opens with: the shared
    headers and #defines once, the hosted handlers' header, each tracepoint struct once with
    every field the members and the records read."""
    events = hosted.specs if hosted is not None else ()
    return [prelude(tuple(group), defines), hosted.header if hosted is not None else "",
            structs_of((*group, *events), formats, tp_btf)]


def hosted_handlers(hosted: Hosted | None, formats: Formats) -> list[str]:
    """Each hosted event text, its tracepoint functions static inline (an entry or the
    counting text calls them)."""
    return [f"// event records of probe {spec.name}\n"
            + handlers_static(hosted.body(spec, formats), spec)
            for spec in (hosted.specs if hosted is not None else ())]


def render_composite(group: Sequence[ProbeSpec], formats: Formats,
                     offsets: Mapping[str, Any], hosted: Hosted | None = None,
                     tp_btf: bool = False) -> str:
    """One object for ``group`` (see the module docstring); ``offsets`` holds the #defines of
    every member (they agree: the same kernel, the same configuration); ``hosted``, the event
    handlers compiled in with them; ``tp_btf``, every entry a tp_btf program."""
    events = hosted.specs if hosted is not None else ()
    defines = {**offsets, **hosted_defines(hosted), "LOST_SLOTS": len(group),
               **({"ONR_TP_BTF": 1} if tp_btf else {})}
    parts = object_head(group, formats, defines, hosted, tp_btf)
    for slot, spec in enumerate(group):
        text = handlers_static(body(spec, formats, offsets, structs=False), spec)
        parts.append(f"#define LOST_SLOT {slot}  // probe {spec.name}\n{text}\n"
                     "#undef LOST_SLOT\n")
    parts.extend(hosted_handlers(hosted, formats))
    parts.append(_entries((*group, *events), formats, tp_btf))
    return "\n".join(parts)
