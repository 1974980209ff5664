"""The one way the agent loads BPF programs: counting probes and event-record probes alike.

collectors/ebpf.py (per-CPU counting maps) and events/source.py (perf-buffer
records) differ only in how a probe's C text is rendered and what is done with
the loaded object (events open a perf buffer). Everything else is here, once:
the environment check (bcc, permissions, tracefs at ``collectors.ebpf.tracefs_path``
or the usual places, BTF), the tracepoint formats read from that tracefs, the
BTF parsed at most once per load and dropped afterwards, compilation and
attachment (an object whose attachment fails is cleaned up, not leaked), a
reason for every probe that did not load, and the memory compilation leaves
behind given back (bpf/trim.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from otel_netreceiver.bpf import compose_hooks, tp_btf
from otel_netreceiver.bpf.btf import Btf, BtfError
from otel_netreceiver.bpf.compose import groups
from otel_netreceiver.bpf.features import Environment, inspect, why_unavailable
from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.bpf.tracefs import TracepointFormat, read_format
from otel_netreceiver.bpf.trim import Released, release_compiler_memory
from otel_netreceiver.config.schema import EbpfConfig

log = logging.getLogger(__name__)
# collection cycles between page-outs after loading (bpf/trim.py): pages another bcc process
# shared at load time cannot be paged out then, and stay resident after it exits
RELEASE_EVERY = 20

Formats = dict[tuple[str, str], TracepointFormat]
# (spec, tracepoint formats read so far, BTF or None) → the program's C text
Render = Callable[[ProbeSpec, Formats, "Btf | None"], str]
# called with (spec, loaded object) after attachment; raising unloads the probe
Attached = Callable[[ProbeSpec, Any], None]
# (the probes of one object, tracepoint formats, BTF or None, tp_btf entries) → its C text
CompositeRender = Callable[[tuple[ProbeSpec, ...], Formats, "Btf | None", bool], str]
# a group whose composite was refused → the renderer of the same object without the event
# handlers compiled into it (events/hosting.py), or None when it had none
BareRender = Callable[[tuple[ProbeSpec, ...]], "CompositeRender | None"]


class ProbeUnavailable(Exception):
    """Raised by a renderer for a probe this kernel cannot have (the message is the reason)."""


class BpfLoader:
    """Loads probes for one collector; keeps the formats and a reason per probe.

    ``kind`` names the collector's probes in log lines ("eBPF probe", "event probe").
    """

    def __init__(self, config: EbpfConfig, proc_root: str, kind: str = "eBPF probe") -> None:
        self._config, self._proc_root, self._kind = config, proc_root, kind
        self.env: Environment = inspect(config.btf_path, proc_root, config.use_bcc,
                                        config.tracefs_path)
        self.formats: dict[tuple[str, str], TracepointFormat] = {}
        self.statuses: dict[str, str] = {}  # probe → "" (loaded) or why not
        # probe → how its tracepoint program runs when that is a choice (bpf/tp_btf.py):
        # "tp_btf", or "classic tracepoint: <why not tp_btf>"
        self.programs: dict[str, str] = {}
        # object name (a probe, or probes joined by "+") → its spec and loaded object
        self.objects: dict[str, tuple[ProbeSpec, Any]] = {}
        self.released: Released | None = None
        self._ticks = 0

    @property
    def tracefs(self) -> str | None:
        return self.env.tracefs

    def load_all(self, specs: Sequence[ProbeSpec], render: Render,
                 attached: Attached | None = None,
                 composite: CompositeRender | None = None,
                 compose_alone: Collection[str] = (),
                 bare: BareRender | None = None) -> dict[str, Any]:
        """Probe name → loaded BPF object, for every spec that loads; the rest get a reason.

        With ``composite``, probes sharing a tracepoint are first tried as one object
        (bpf/compose.py), and so are the socket-hook probes (bpf/compose_hooks.py); their
        names then map to the same object (each its own view); if it does not load,
        each is loaded alone, so a probe the kernel refuses costs only that probe. A probe in
        ``compose_alone`` goes through ``composite`` even when no other probe shares its
        tracepoints (its event handler joins its object, events/hosting.py), and so does a
        lone probe on a tracepoint with a tp_btf entry (bpf/tp_btf.py ``applies``). A
        socket-hook group refused with event handlers compiled in is tried once more without
        them (``bare``) before probe by probe: its members alone would each cost a program
        invocation per packet end, the records' own object costs one. The BTF
        (tens of MB of Python objects for a 6.18 kernel) lives only during this call:
        renderers take the offsets they need from it.
        """
        loaded: dict[str, Any] = {}
        btf: list[Btf] = []  # loaded at most once, by the first probe needing it
        plan = compose_hooks.join(groups(specs)) if composite is not None else \
            [(s,) for s in specs]
        for group in plan:
            # a lone probe on a tp_btf tracepoint too: its entry is the tp_btf program
            joins = len(group) > 1 or any(s.name in compose_alone for s in group) or (
                group[0].finish is None and tp_btf.applies(group[0]))
            if joins and composite is not None and self._load_composite(
                    group, composite, btf, attached, loaded, bare):
                continue
            # refused: a tracepoint group that adopted a socket-hook probe is tried without
            # it first (bpf/compose_hooks.py split); any other group, probe by probe
            for part in compose_hooks.split(group) if joins else [(s,) for s in group]:
                if len(part) > 1 and composite is not None and self._load_composite(
                        part, composite, btf, attached, loaded):
                    continue
                for spec in part:
                    bpf, reason = self._try(spec, render, btf, attached)
                    if bpf is not None:
                        loaded[spec.name] = bpf
                    self._status(spec.name, reason)
        btf.clear()
        if loaded:
            self.release()
        return loaded

    def _load_composite(self, group: tuple[ProbeSpec, ...], composite: CompositeRender,
                        btf: list[Btf], attached: Attached | None,
                        loaded: dict[str, Any], bare: BareRender | None = None) -> bool:
        clash = compose_hooks.conflicts_of(group)
        names = "+".join(s.name for s in group)
        if clash:
            log.info("%s %s share a hook but each declares %s: loaded one by one",
                     self._kind, names, ", ".join(sorted(clash)))
            return False
        spec = compose_hooks.spec_of(group)
        bpf, how = self._try_tp_btf(group, spec, composite, btf, attached)
        reason = ""
        if bpf is None:
            bpf, reason = self._try(spec, lambda s, f, b: composite(group, f, b, False), btf,
                                    attached)
        again = bare(group) if bpf is None and bare is not None and \
            compose_hooks.is_hook_group(group) else None
        if again is not None:
            log.warning("%s %s as one program with event handlers: %s; loading it without "
                        "them (their records in an object of their own)", self._kind, names,
                        reason)
            return self._load_composite(group, again, btf, attached, loaded)
        if bpf is None:
            log.warning("%s %s as one program: %s; loading each alone", self._kind, names,
                        reason)
            return False
        for member in group:
            loaded[member.name] = compose_hooks.member_view(bpf)
            self._status(member.name, "")
            if how:
                self.programs[member.name] = how
        self.objects[spec.name] = (spec, bpf)
        return True

    def _try_tp_btf(self, group: tuple[ProbeSpec, ...], spec: ProbeSpec,
                    composite: CompositeRender, btf: list[Btf],
                    attached: Attached | None) -> tuple[Any, str]:
        """The composite with tp_btf entries (bpf/tp_btf.py) where this kernel allows it:
        (object, "tp_btf"), or (None, "classic tracepoint: why not") for the caller to load
        the classic one; (None, "") for groups with no tracepoint to choose for."""
        if compose_hooks.is_hook_group(group) or not tp_btf.applies(spec):
            return None, ""  # no tracepoint of it has a tp_btf entry: nothing to say
        try:
            if not btf:
                btf.append(Btf.load(self._config.btf_path))
            tp_spec, why = tp_btf.plan(spec, btf[0])
        except BtfError as exc:
            tp_spec, why = None, str(exc)
        if tp_spec is not None:
            bpf, why = self._try(tp_spec, lambda s, f, b: composite(group, f, b, True), btf,
                                 attached)
            if bpf is not None:
                log.info("%s %s: skb programs as tp_btf", self._kind, spec.name)
                return bpf, "tp_btf"
        log.warning("%s %s as tp_btf: %s; loading the classic tracepoint program", self._kind,
                    spec.name, why)
        return None, f"classic tracepoint: tp_btf {why[:200]}"

    def _try(self, spec: ProbeSpec, render: Render, btf: list[Btf],
             attached: Attached | None) -> tuple[Any, str]:
        """(object, "") or (None, why not)."""
        reason = why_unavailable(spec, self.env)
        if reason:
            return None, reason
        try:
            if spec.needs_btf and not btf:
                btf.append(Btf.load(self._config.btf_path))
            bpf = self._load(spec, render, btf[0] if btf else None, attached)
        except ProbeUnavailable as exc:
            return None, str(exc)
        except Exception as exc:  # the verifier, the compiler, a missing field
            return None, f"load failed: {type(exc).__name__}: {str(exc)[:300]}"
        self.objects[spec.name] = (spec, bpf)
        return bpf, ""

    def _status(self, name: str, reason: str) -> None:
        self.statuses[name] = reason
        if reason:
            log.warning("%s %s unavailable: %s", self._kind, name, reason)

    def render_only(self, spec: ProbeSpec, render: Render) -> str:
        """The C text ``load_all`` would compile for ``spec`` here, without compiling
        (``probes --print-program``); ProbeUnavailable names why this host cannot have it."""
        # rendering needs the tracepoints and BTF, not bcc, privileges or kernel headers
        reason = why_unavailable(spec, replace(self.env, bcc_error="", permission_error="",
                                               headers_error=""))
        if reason:
            raise ProbeUnavailable(reason)
        for attach in spec.attach:
            self.formats[(attach.category, attach.event)] = read_format(
                attach.category, attach.event, self.env.tracefs)
        btf = Btf.load(self._config.btf_path) if spec.needs_btf else None
        return render(spec, self.formats, btf)

    def _load(self, spec: ProbeSpec, render: Render, btf: Btf | None,
              attached: Attached | None) -> Any:
        from bcc import BPF

        for attach in spec.attach:
            self.formats[(attach.category, attach.event)] = read_format(
                attach.category, attach.event, self.env.tracefs)
        bpf = BPF(text=render(spec, self.formats, btf).encode())
        entries = {f"{a.category}:{a.event}".encode(): (a.function.encode(), a.btf_id)
                   for a in spec.attach if a.btf_id}
        if entries:  # loaded through bpf(2): bcc cannot (bpf/tp_btf.py)
            try:
                bpf = tp_btf.TpBtfObject(bpf, entries)
            except BaseException:
                bpf.cleanup()
                raise
        try:
            for attach in spec.attach:
                bpf.attach_tracepoint(tp=f"{attach.category}:{attach.event}".encode(),
                                      fn_name=attach.function.encode())
            if spec.finish is not None:
                bpf = spec.finish(bpf)
            if attached is not None:
                attached(spec, bpf)
        except BaseException:
            bpf.cleanup()
            raise
        return bpf

    def release(self) -> Released:
        """Give back what compiling left (bpf/trim.py); again later if pages came back."""
        self.released = release_compiler_memory(self._proc_root)
        return self.released

    def tick(self) -> Released | None:
        """Called once per collection cycle: page out again on the first and every
        RELEASE_EVERY-th cycle (a few ms of page-table walk; nothing when nothing loaded)."""
        self._ticks += 1
        if self.released is None or (self._ticks - 1) % RELEASE_EVERY:
            return None
        return self.release()
