"""Kernel struct member offsets from BTF (/sys/kernel/btf/vmlinux), without headers.

Probes that need a field of a kernel struct (the network namespace of an skb or
a socket) must use the running kernel's layout: installed headers may belong to
another version (this project's test machine runs 6.18 with 6.1 headers). The
format is Documentation/bpf/btf.rst: a header, a type section of variable-size
records (``struct btf_type`` + kind-specific data), and a string section.
Only what offset lookups need is kept: names, kinds, sizes and struct members.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

BTF_MAGIC = 0xEB9F
KIND_STRUCT, KIND_UNION = 4, 5
KIND_TYPEDEF = 8  # btf.rst "BTF_KIND_TYPEDEF"
KIND_FUNC = 12  # btf.rst "BTF_KIND_FUNC"
KIND_PTR, KIND_FUNC_PROTO = 2, 13  # btf.rst "BTF_KIND_PTR", "BTF_KIND_FUNC_PROTO"
# bytes of kind-specific data after struct btf_type, per kind (btf.rst "Type encoding")
_FIXED_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}  # INT, ARRAY, VAR, DECL_TAG
# STRUCT, UNION, ENUM, FUNC_PROTO, DATASEC, ENUM64
_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_MODIFIERS = {8, 9, 10, 11, 18}  # TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG


class BtfError(ValueError):
    """Malformed BTF, or a struct/member this kernel does not have (names them)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    type_id: int
    bit_offset: int


@dataclass(frozen=True, slots=True)
class BtfType:
    name: str
    kind: int
    size_or_type: int
    members: tuple[Member, ...] = ()


def _string(strings: bytes, offset: int) -> str:
    end = strings.find(b"\0", offset)
    return strings[offset:end if end >= 0 else None].decode("ascii", "replace")


def parse_btf(data: bytes) -> list[BtfType]:
    """Every type, indexed by id (id 0 is void); BtfError for a truncated or lying blob."""
    try:
        return _parse_btf(data)
    except struct.error as exc:  # a section length that runs past the end of the data
        raise BtfError(f"BTF of {len(data)} bytes is truncated or its header lies: {exc}") \
            from None


def _parse_btf(data: bytes) -> list[BtfType]:
    if len(data) < 24:
        raise BtfError(f"BTF of {len(data)} bytes is shorter than its header")
    magic, _ver, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", data)
    if magic != BTF_MAGIC:
        raise BtfError(f"bad BTF magic {magic:#x}")
    types_at, strings_at = hdr_len + type_off, hdr_len + str_off
    strings = data[strings_at:strings_at + str_len]
    types: list[BtfType] = [BtfType("", 0, 0)]
    pos, end = types_at, types_at + type_len
    while pos < end:
        name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
        pos += 12
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        members: tuple[Member, ...] = ()
        if kind in (KIND_STRUCT, KIND_UNION):
            members = tuple(_members(data, pos, vlen, kflag, strings))
        elif kind == KIND_FUNC_PROTO:  # struct btf_param {name_off, type}: offset 0
            members = tuple(Member(_string(strings, n), t, 0) for n, t in (
                struct.unpack_from("<II", data, pos + 8 * i) for i in range(vlen)))
        pos += _FIXED_EXTRA.get(kind, 0) + _PER_MEMBER.get(kind, 0) * vlen
        types.append(BtfType(_string(strings, name_off), kind, size_or_type, members))
    return types


def _members(data: bytes, pos: int, vlen: int, kflag: int, strings: bytes) -> list[Member]:
    out = []
    for i in range(vlen):
        name_off, type_id, offset = struct.unpack_from("<III", data, pos + 12 * i)
        bit_offset = offset & 0xFFFFFF if kflag else offset  # kflag: low 24 bits, high 8 = size
        out.append(Member(_string(strings, name_off), type_id, bit_offset))
    return out


class Btf:
    """Offset lookups over one parsed BTF blob."""

    def __init__(self, types: list[BtfType]) -> None:
        self._types = types
        self._structs: dict[str, int] = {}
        self._functions: dict[str, int] | None = None
        for type_id, t in enumerate(types):
            if t.kind in (KIND_STRUCT, KIND_UNION) and t.name and t.name not in self._structs:
                self._structs[t.name] = type_id

    @classmethod
    def load(cls, path: str = "/sys/kernel/btf/vmlinux") -> Btf:
        try:
            return cls(parse_btf(Path(path).read_bytes()))
        except OSError as exc:
            raise BtfError(f"cannot read BTF at {path}: {exc.strerror}") from exc

    def function_id(self, name: str) -> int | None:
        """BTF id of the kernel function ``name`` (an fentry program's attach_btf_id), if any."""
        if self._functions is None:
            self._functions = {t.name: i for i, t in enumerate(self._types)
                               if t.kind == KIND_FUNC and t.name}
        return self._functions.get(name)

    def typedef_id(self, name: str) -> int | None:
        """BTF id of the typedef ``name`` (btf_trace_<event>: a tp_btf program's
        attach_btf_id, include/trace/bpf_probe.h)."""
        return next((i for i, t in enumerate(self._types)
                     if t.kind == KIND_TYPEDEF and t.name == name), None)

    def typedef_params(self, name: str) -> tuple[str, ...] | None:
        """The parameter types of the function pointer typedef ``name`` ("void *",
        "struct sk_buff *", "enum skb_drop_reason", ...): what a tp_btf program's ctx[i]
        holds (ctx[0] is the second: the first, ``void *__data``, is the tracepoint's)."""
        type_id = self.typedef_id(name)
        if type_id is None:
            return None
        proto = self._resolve(self._types[type_id].size_or_type)
        if self._types[proto].kind == KIND_PTR:
            proto = self._resolve(self._types[proto].size_or_type)
        if self._types[proto].kind != KIND_FUNC_PROTO:
            return None
        return tuple(self._describe(m.type_id) for m in self._types[proto].members)

    def _describe(self, type_id: int) -> str:
        t = self._types[self._resolve(type_id)]
        if t.kind == KIND_PTR:
            inner = self._describe(t.size_or_type) if t.size_or_type else "void"
            return f"{inner} *"
        prefix = {KIND_STRUCT: "struct ", KIND_UNION: "union ", 6: "enum ", 19: "enum "}
        return prefix.get(t.kind, "") + (t.name or "void")

    def _resolve(self, type_id: int) -> int:
        while self._types[type_id].kind in _MODIFIERS:
            type_id = self._types[type_id].size_or_type
        return type_id

    def _find(self, type_id: int, name: str) -> tuple[int, int] | None:
        """(byte offset, member type id) of ``name``, looking into anonymous members."""
        for member in self._types[type_id].members:
            if member.name == name:
                return member.bit_offset // 8, member.type_id
            if not member.name:
                inner = self._resolve(member.type_id)
                found = self._find(inner, name) if self._types[inner].members else None
                if found is not None:
                    return member.bit_offset // 8 + found[0], found[1]
        return None

    def offset(self, struct_name: str, path: str) -> int:
        """Byte offset of ``path`` ("a.b.c", through embedded structs) in ``struct_name``."""
        type_id = self._structs.get(struct_name)
        if type_id is None:
            raise BtfError(f"struct {struct_name} is not in this kernel's BTF")
        total = 0
        for part in path.split("."):
            found = self._find(self._resolve(type_id), part)
            if found is None:
                raise BtfError(f"struct {struct_name} has no member {path!r} (at {part!r})")
            total += found[0]
            type_id = found[1]
        return total
