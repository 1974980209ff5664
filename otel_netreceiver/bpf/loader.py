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
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from otel_netreceiver.bpf.btf import Btf
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
        self.released: Released | None = None
        self._ticks = 0

    @property
    def tracefs(self) -> str | None:
        return self.env.tracefs

    def load_all(self, specs: Sequence[ProbeSpec], render: Render,
                 attached: Attached | None = None) -> dict[str, Any]:
        """Probe name → loaded BPF object, for every spec that loads; the rest get a reason.

        The BTF (tens of MB of Python objects for a 6.18 kernel) lives only during this
        call: renderers take the offsets they need from it.
        """
        loaded: dict[str, Any] = {}
        btf: Btf | None = None
        for spec in specs:
            reason = why_unavailable(spec, self.env)
            if not reason:
                try:
                    if spec.needs_btf and btf is None:
                        btf = Btf.load(self._config.btf_path)
                    loaded[spec.name] = self._load(spec, render, btf, attached)
                except ProbeUnavailable as exc:
                    reason = str(exc)
                except Exception as exc:  # the verifier, the compiler, a missing field
                    reason = f"load failed: {type(exc).__name__}: {str(exc)[:300]}"
            self.statuses[spec.name] = reason
            if reason:
                log.warning("%s %s unavailable: %s", self._kind, spec.name, reason)
        del btf
        if loaded:
            self.release()
        return loaded

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
        try:
            for attach in spec.attach:
                bpf.attach_tracepoint(tp=f"{attach.category}:{attach.event}".encode(),
                                      fn_name=attach.function.encode())
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
