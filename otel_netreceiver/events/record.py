"""The event record, defined once: this field table renders the C struct of every event
program (``struct nr_event`` in bpf/include/events.h) and builds the ``struct.Struct`` that
decodes it, so the two cannot drift.

Layout rules the table follows (checked by ``c_struct`` and the tests): fields in declaration
order, each at an offset that is a multiple of its size, the whole a multiple of 8, so the C
compiler adds no padding that the Python side would not know of.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# C scalar type → struct format letter and size
_SCALARS = {"u64": ("Q", 8), "u32": ("I", 4), "s32": ("i", 4), "u16": ("H", 2),
            "u8": ("s", 1), "char": ("s", 1)}


@dataclass(frozen=True, slots=True)
class Field:
    c_name: str
    c_type: str  # u64, u32, s32, u16, or u8/char arrays (``length`` > 0)
    attr: str  # the Record attribute it decodes into; "" for padding
    comment: str
    length: int = 0  # array length for u8/char

    @property
    def size(self) -> int:
        return _SCALARS[self.c_type][1] * (self.length or 1)

    @property
    def code(self) -> str:
        letter = _SCALARS[self.c_type][0]
        return f"{self.length}{letter}" if self.length else letter


FIELDS: tuple[Field, ...] = (
    Field("ts", "u64", "ts_ns", "bpf_ktime_get_ns (CLOCK_MONOTONIC)"),
    Field("location", "u64", "location", "kfree_skb's drop site (symbolised in user space)"),
    Field("value_ns", "u64", "value_ns", "the latency of *_SLOW events"),
    Field("type", "u32", "type", "EV_<name>: the registration order of the event types"),
    Field("netns", "u32", "netns", "namespace inode, 0 when the kernel could not tell"),
    Field("reason", "u32", "reason",
          "drop reason, reset reason (0xFFFFFFFF none), softirq vector"),
    Field("state", "u32", "state", "TCP state, ONR_NO_SOCKET_STATE = no socket"),
    Field("stack_id", "s32", "stack_id",
          "-1 when no stack was asked for, < -1 when it was lost (-errno - 1)"),
    Field("cpu", "u32", "cpu", ""),
    Field("protocol", "u16", "protocol", "L3 protocol (ETH_P_*) of a dropped skb"),
    Field("l4", "u16", "l4", "IPPROTO_* of a dropped skb, 0 unknown"),
    Field("__pad", "u32", "", ""),
    Field("saddr", "u8", "saddr", "struct sockaddr_in / sockaddr_in6 layout: family, port "
          "(network order), IPv4 address at 4, IPv6 address at 8; family 0 = unknown", 28),
    Field("daddr", "u8", "daddr", "the same layout as saddr", 28),
    Field("ifname", "char", "ifname", "", 16),
)

RECORD = struct.Struct("<" + "".join(f.code for f in FIELDS))
# the Record attributes in unpack order, and the unpacked positions they come from
ATTRS = tuple(f.attr for f in FIELDS if f.attr)
POSITIONS = tuple(i for i, f in enumerate(FIELDS) if f.attr)


def _check_layout(fields: tuple[Field, ...]) -> None:
    offset = 0
    for f in fields:
        align = _SCALARS[f.c_type][1]
        if offset % align:
            raise ValueError(f"event record field {f.c_name} at offset {offset} is not "
                             f"aligned to {align}: the C compiler would pad before it")
        offset += f.size
    if offset % 8:
        raise ValueError(f"event record of {offset} bytes: not a multiple of 8")


def c_struct(fields: tuple[Field, ...] = FIELDS) -> str:
    """``struct nr_event`` as C, for events.h (EV_RECORD_STRUCT)."""
    _check_layout(fields)
    lines = ["struct nr_event {"]
    for f in fields:
        decl = f"    {f.c_type} {f.c_name}{f'[{f.length}]' if f.length else ''};"
        lines.append(f"{decl:<21}// {f.comment}" if f.comment else decl)
    return "\n".join(lines) + "\n};"
