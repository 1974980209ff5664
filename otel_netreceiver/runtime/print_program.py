"""``otel-netreceiver probes --print-program NAME``: the C text a probe compiles to here.

As bcc's tools print theirs with ``--ebpf``: rendering is a pure function of this
kernel's tracepoint formats, its BTF offsets and the configuration, so nothing is
compiled or attached. ``NAME`` is a counting probe (collectors.ebpf.probes) or
``events/NAME`` for an event-record program (collectors.events.types), or ``A+B`` for the
one program probes A and B sharing a tracepoint (or both at the sockets) compile into when
both are configured.
"""

from __future__ import annotations

from otel_netreceiver.bpf.compose import groups
from otel_netreceiver.bpf.compose_hooks import conflicts_of, join, spec_of
from otel_netreceiver.bpf.loader import BpfLoader, ProbeUnavailable, Render
from otel_netreceiver.bpf.probes import EVENT_PROBES, PROBES
from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.collectors.ebpf import CountingRender
from otel_netreceiver.config.schema import AgentConfig
from otel_netreceiver.events.source import event_render, settings_of
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.netns.resolver import NetnsResolver

EVENTS = "events/"


class UnknownProgram(ValueError):
    """A name that is neither a counting probe nor events/<event probe>."""


def composites() -> dict[str, tuple[ProbeSpec, ...]]:
    """The objects the agent compiles from probes sharing a tracepoint (bpf/compose.py) or
    the socket hooks (bpf/compose_hooks.py), named by their probes joined with '+', when all
    of them are configured."""
    return {spec_of(group).name: group for group in join(groups(list(PROBES.values())))
            if len(group) > 1 and not conflicts_of(group)}


def program_names() -> list[str]:
    return [*PROBES, *composites(), *(EVENTS + name for name in EVENT_PROBES)]


def _spec_and_render(cfg: AgentConfig, name: str) -> tuple[ProbeSpec, Render]:
    ebpf = cfg.collectors.ebpf
    if name.startswith(EVENTS) and name[len(EVENTS):] in EVENT_PROBES:
        return (EVENT_PROBES[name[len(EVENTS):]],
                event_render(settings_of(cfg.collectors.events), ebpf.timing_sample, ebpf))
    cookies = NetnsResolver(cfg.proc_root, NoPods()).has_cookies
    if name in PROBES:
        return PROBES[name], CountingRender(ebpf, cookies)
    if name in composites():
        group, counting = composites()[name], CountingRender(ebpf, cookies)
        return (spec_of(group),
                lambda spec, formats, btf: counting.composite(group, formats, btf))
    raise UnknownProgram(f"no probe {name!r}; known: {', '.join(program_names())}")


def program_text(cfg: AgentConfig, name: str) -> str:
    """The rendered C of ``name`` on this host; ProbeUnavailable says why it cannot be."""
    spec, render = _spec_and_render(cfg, name)
    return BpfLoader(cfg.collectors.ebpf, cfg.proc_root, "program").render_only(spec, render)


__all__ = ["ProbeUnavailable", "UnknownProgram", "program_names", "program_text"]
