"""Tracepoint formats from tracefs: field layouts and symbolic value names, parsed purely.

Layouts change between kernel versions (6.18's tcp:tcp_send_reset carries
sockaddrs and a reason where older kernels had ports), and enum names like
``enum skb_drop_reason`` exist only in the running kernel's format file, so the
probes render their argument structs from it (``render_struct``) and take
value names from its ``print fmt`` instead of a hard-coded table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);"
                    r"\s*signed:(?P<signed>\d+);")
_SYMBOLIC = re.compile(r"__print_symbolic\(REC->(?P<field>\w+),(?P<body>(?:\s*\{[^}]*\},?)+)\s*\)")
_PAIR = re.compile(r"\{\s*(?P<value>-?\w+)\s*,\s*\"(?P<name>[^\"]*)\"\s*\}")


class FormatError(ValueError):
    """A format file that does not look like one; names the tracepoint."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    decl: str
    offset: int
    size: int
    signed: bool


@dataclass(frozen=True, slots=True)
class TracepointFormat:
    name: str
    fields: tuple[Field, ...]
    symbols: dict[str, dict[int, str]]  # field → {value: name}, numeric values only

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def _field_name(decl: str) -> str:
    name = decl.split()[-1]
    return name.split("[", 1)[0].lstrip("*")


def parse_format(text: str, name: str) -> TracepointFormat:
    fields = []
    for match in _FIELD.finditer(text):
        decl = match.group("decl").strip()
        field_name = _field_name(decl) if decl else ""
        if not field_name:
            raise FormatError(f"{name}: a field without a name: {match.group(0)!r}")
        fields.append(Field(field_name, decl, int(match.group("offset")),
                            int(match.group("size")), match.group("signed") == "1"))
    if not fields:
        raise FormatError(f"{name}: no 'field:' lines in the format file")
    symbols: dict[str, dict[int, str]] = {}
    for sym in _SYMBOLIC.finditer(text):
        names = {int(p.group("value")): p.group("name") for p in _PAIR.finditer(sym.group("body"))
                 if p.group("value").lstrip("-").isdigit()}
        if names:
            symbols.setdefault(sym.group("field"), {}).update(names)
    return TracepointFormat(name, tuple(fields), symbols)


def tracefs_root() -> str | None:
    for root in TRACEFS_ROOTS:
        if Path(root, "events").is_dir():
            return root
    return None


def read_format(category: str, event: str, root: str | None = None) -> TracepointFormat:
    base = root or tracefs_root()
    if base is None:
        raise FormatError(f"{category}:{event}: tracefs is not mounted "
                          "(mount -t tracefs nodev /sys/kernel/tracing)")
    path = Path(base, "events", category, event, "format")
    try:
        return parse_format(path.read_text(), f"{category}:{event}")
    except OSError as exc:
        raise FormatError(f"{category}:{event}: {path}: {exc.strerror}") from exc


_C_TYPES = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


def render_struct(fmt: TracepointFormat, struct_name: str, wanted: tuple[str, ...]) -> str:
    """A C struct with ``wanted`` fields at the running kernel's offsets (padding in between).

    Scalars become u8..u64 of the field's size (enums, pointers and ints alike; the
    BPF code treats pointers as u64 addresses); arrays become u8[size]. A ``__data_loc``
    field is a u32 (length << 16 | offset of the data within the record), not an array.
    """
    lines, position = [f"struct {struct_name} {{"], 0
    for name in sorted(wanted, key=lambda n: _required(fmt, n).offset):
        f = _required(fmt, name)
        if f.offset > position:
            lines.append(f"    u8 __pad_{position}[{f.offset - position}];")
        if ("[" in f.decl and not f.decl.startswith("__data_loc")) or f.size not in _C_TYPES:
            lines.append(f"    u8 {f.name}[{f.size}];")
        else:
            lines.append(f"    {_C_TYPES[f.size]} {f.name};")
        position = f.offset + f.size
    lines.append("};")
    return "\n".join(lines)


def _required(fmt: TracepointFormat, name: str) -> Field:
    f = fmt.field(name)
    if f is None:
        raise FormatError(f"{fmt.name}: this kernel's tracepoint has no field {name!r}")
    return f
