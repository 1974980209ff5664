"""How a probe's BPF program is described and rendered into C (pure; no probe is named here).

A probe (bpf/probes/<name>/) describes each of its programs with a ``ProbeSpec``:
the C file in its folder, the tracepoints it attaches to, the tracepoint structs
to render from tracefs, and hooks for what only it needs (extra #defines, text
substitutions). Rendering is a pure function of (template, tracepoint formats,
BTF offsets), so it is tested without loading anything. Headers shared by
every program live in bpf/include/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from otel_netreceiver.bpf.btf import Btf, BtfError
from otel_netreceiver.bpf.tracefs import TracepointFormat, render_struct

Formats = Mapping[tuple[str, str], TracepointFormat]
# (rendered text, tracepoint formats) → text: the probe's own placeholders substituted
TextHook = Callable[[str, Formats], str]
# (tracepoint formats, collectors.ebpf config) → the probe's own #defines (numbers or macros)
DefinesHook = Callable[[Formats, Any], dict[str, Any]]
# the compiled, tracepoint-attached bcc object → what the collector keeps (attaches hooks
# that are not tracepoints, e.g. cgroup programs; its cleanup() must detach them)
FinishHook = Callable[[Any], Any]


# the endpoint fields of the tcp:* tracepoints (include/trace/events/tcp.h)
INET_FIELDS = ("sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6")


@dataclass(frozen=True, slots=True)
class Attach:
    category: str
    event: str
    function: str
    btf_id: int = 0  # the BTF typedef btf_trace_<event>: loaded as tp_btf (bpf/tp_btf.py)


@dataclass(frozen=True, slots=True)
class StructSpec:
    placeholder: str
    category: str
    event: str
    struct_name: str
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()  # included when this kernel's tracepoint has them


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    name: str
    source: str  # a C file in ``package``'s folder (the probe's folder)
    attach: tuple[Attach, ...]
    structs: tuple[StructSpec, ...] = ()
    needs_btf: bool = True
    headers: tuple[str, ...] = ()  # extra include/*.h after common.h and netns.h
    functions: tuple[str, ...] = ()  # fentry targets, first one in this kernel's BTF wins
    package: str = "otel_netreceiver.bpf"  # the probe module: its folder holds ``source``
    text: TextHook | None = None
    defines: DefinesHook | None = None
    finish: FinishHook | None = None


def netns_cookie_offset(btf: Btf) -> dict[str, int]:
    """OFF_NET_COOKIE: struct net's ns.ns_id (the namespace cookie ioctl(NS_GET_ID) returns,
    include/linux/ns_common.h), or nothing on kernels without it."""
    try:
        return {"OFF_NET_COOKIE": btf.offset("net", "ns") + btf.offset("ns_common", "ns_id")}
    except BtfError:
        return {}


def kernel_offsets(btf: Btf) -> dict[str, int]:
    """Offsets the probes read, from the running kernel's BTF (net/core, include/net/sock.h)."""
    net_inum = btf.offset("net", "ns") + btf.offset("ns_common", "inum")
    return {
        **netns_cookie_offset(btf),
        "OFF_NET_INUM": net_inum,
        "OFF_SOCK_NET": btf.offset("sock", "__sk_common") + btf.offset("sock_common", "skc_net"),
        "OFF_SOCK_STATE": btf.offset("sock", "__sk_common")
        + btf.offset("sock_common", "skc_state"),
        "OFF_SKB_DEV": btf.offset("sk_buff", "dev"),
        "OFF_SKB_SK": btf.offset("sk_buff", "sk"),
        "OFF_SKB_HEAD": btf.offset("sk_buff", "head"),
        "OFF_SKB_PROTOCOL": btf.offset("sk_buff", "protocol"),
        "OFF_SKB_TRANSPORT": btf.offset("sk_buff", "transport_header"),
        "OFF_SKB_NETWORK": btf.offset("sk_buff", "network_header"),
        "OFF_DEV_NET": btf.offset("net_device", "nd_net"),
    }


def header(name: str) -> str:
    """A shared header from bpf/include/."""
    return resources.files("otel_netreceiver.bpf").joinpath("include", name).read_text()


def source(spec: ProbeSpec) -> str:
    """The probe's C file, from its own folder."""
    return resources.files(spec.package).joinpath(spec.source).read_text()


def body(spec: ProbeSpec, formats: Formats, offsets: Mapping[str, Any], function: str = "",
         structs: bool = True) -> str:
    """The probe's own C: its file with the tracepoint structs (``structs=False``: left to
    the caller, which renders each struct once for all the probes of one object) and its
    hooks applied."""
    text = source(spec).replace("VIRT_FUNCTION", function)
    if "TIMING_SAMPLE" in text and int(offsets.get("TIMING_SAMPLE", 0)) < 1:
        raise ValueError(f"probe {spec.name} times one event in TIMING_SAMPLE: pass "
                         f"TIMING_SAMPLE >= 1 (collectors.ebpf.timing_sample), got "
                         f"{offsets.get('TIMING_SAMPLE')!r}")
    for struct in spec.structs:
        text = text.replace(struct.placeholder, render_struct_of(struct, formats)
                            if structs else "")
    return spec.text(text, formats) if spec.text is not None else text


def render_struct_of(struct: StructSpec, formats: Formats,
                     extra: tuple[str, ...] = ()) -> str:
    """``struct``'s C from this kernel's format: its fields, the optional ones the kernel
    has, and ``extra`` fields other probes of the same object need."""
    fmt = formats[(struct.category, struct.event)]
    wanted = struct.fields + tuple(f for f in struct.optional if fmt.field(f)) + extra
    return render_struct(fmt, struct.struct_name, tuple(dict.fromkeys(wanted)))


def prelude(specs: tuple[ProbeSpec, ...], offsets: Mapping[str, Any]) -> str:
    """#defines and the shared headers, once per object."""
    defines = "".join(f"#define {key} {value}\n" for key, value in sorted(offsets.items()))
    # kernel_abi.h: TCP states, address families, softirq vectors named once (kernel_abi.py)
    helpers = header("kernel_abi.h") + header("common.h")
    helpers += header("netns.h") if any(s.needs_btf for s in specs) else ""
    names = dict.fromkeys(name for s in specs for name in s.headers)
    helpers += "".join(header(name) for name in names)
    return defines + helpers


def render(spec: ProbeSpec, formats: Formats, offsets: Mapping[str, Any],
           function: str = "") -> str:
    """The program's C text: offsets as #defines, common helpers, structs from tracefs.

    ``function`` is the fentry target the kernel has (``spec.functions``), for VIRT_FUNCTION.
    """
    text = body(spec, formats, offsets, function)
    return prelude((spec,), {"LOST_SLOT": 0, **offsets}) + "\n" + text
