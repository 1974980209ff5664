"""The kernel side of the peer table: a ``BPF_MAP_TYPE_LPM_TRIE`` that user space keeps in step.

The key is the kernel's ``struct bpf_lpm_trie_key`` layout (include/uapi/linux/bpf.h):
a ``__u32 prefixlen`` in host byte order, then the address bytes in network order,
here always 16 (IPv4 mapped into IPv6, peers/classes.py). The value is two bytes:
the peer class and the zone index. A lookup with a full 128-bit prefix answers the
longest stored prefix that covers the address, from user space (``bpf(BPF_MAP_LOOKUP_ELEM)``)
as from a program (``bpf_map_lookup_elem``): both call the map's ``trie_lookup_elem``
(kernel/bpf/lpm_trie.c), so a user-space lookup shows what a program would see.

``plan`` is pure: what to write and what to delete to turn the entries installed
last time into a new table. New and changed entries are written before stale ones
are deleted, so no address loses its class in between (a lookup during the update
may see the old or the new answer for the prefixes being changed, never none).
"""

from __future__ import annotations

import contextlib
import ctypes
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_netreceiver.peers.classes import PeerClass, PeerTable

KEY_BYTES = 20  # u32 prefixlen + 16 address bytes
VALUE_BYTES = 2
DEFAULT_MAX_ENTRIES = 16384

Key = tuple[int, bytes]  # (prefixlen over 128 bits, 16 address bytes)
Value = tuple[int, int]  # (peer class, zone index)


def declaration(name: str = "peer_table", max_entries: int = DEFAULT_MAX_ENTRIES) -> str:
    """The C of the map and its key, for a bcc program (BPF_LPM_TRIE sets BPF_F_NO_PREALLOC,
    which the kernel requires of LPM tries: memory is used per stored prefix only)."""
    return (f"struct {name}_key {{ u32 prefixlen; u8 addr[16]; }};\n"
            f"struct {name}_value {{ u8 peer_class; u8 zone; }};\n"
            f"BPF_LPM_TRIE({name}, struct {name}_key, struct {name}_value, {max_entries});\n")


def pack_key(prefixlen: int, address: bytes) -> bytes:
    """The key as the kernel reads it: host-order u32, then the address in network order."""
    if len(address) != 16 or not 0 <= prefixlen <= 128:
        raise ValueError(f"bad LPM key: /{prefixlen} over {len(address)} bytes")
    return struct.pack("=I", prefixlen) + address


def rows(table: PeerTable) -> dict[Key, Value]:
    return {(e.prefixlen, e.address): (int(e.peer_class), e.zone) for e in table.entries}


@dataclass(frozen=True, slots=True)
class Plan:
    put: tuple[tuple[Key, Value], ...]  # new or changed, longest prefixes first
    delete: tuple[Key, ...]


def plan(installed: Mapping[Key, Value], wanted: Mapping[Key, Value]) -> Plan:
    """The writes and deletes that turn ``installed`` into ``wanted``; nothing for equal rows."""
    put = sorted(((k, v) for k, v in wanted.items() if installed.get(k) != v),
                 key=lambda kv: (-kv[0][0], kv[0][1]))
    return Plan(tuple(put), tuple(sorted(k for k in installed if k not in wanted)))


@dataclass
class SyncStats:
    entries: int = 0
    writes: int = 0
    deletes: int = 0
    refused: int = 0  # writes the kernel refused (the map is full: ENOSPC)
    last_error: str = ""


class PeerMap:
    """A bcc LPM trie table kept equal to the latest PeerTable (the thin I/O part)."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._installed: dict[Key, Value] = {}
        self.stats = SyncStats()

    def sync(self, table: PeerTable) -> SyncStats:
        steps = plan(self._installed, rows(table))
        for key, value in steps.put:
            try:
                self._table[self._key(key)] = self._value(value)
            except Exception as exc:  # bcc raises a bare Exception with strerror
                self.stats.refused += 1
                self.stats.last_error = str(exc)
                self._installed.pop(key, None)
                continue
            self._installed[key] = value
            self.stats.writes += 1
        for key in steps.delete:
            with contextlib.suppress(KeyError):  # already gone: the result is the same
                del self._table[self._key(key)]
            self._installed.pop(key, None)
            self.stats.deletes += 1
        self.stats.entries = len(self._installed)
        return self.stats

    def lookup(self, address: bytes) -> Value | None:
        """The kernel's answer for one 16-byte address (a /128 lookup), or None."""
        try:
            leaf = self._table[self._key((128, address))]
        except KeyError:
            return None
        return int(leaf.peer_class), int(leaf.zone)

    def _key(self, key: Key) -> Any:
        out = self._table.Key()
        ctypes.memmove(ctypes.addressof(out), pack_key(*key), KEY_BYTES)
        return out

    def _value(self, value: Value) -> Any:
        out = self._table.Leaf()
        out.peer_class, out.zone = value
        return out


def class_of(value: Value | None) -> PeerClass:
    """No entry covers the address: the internet (the kernel program's default too)."""
    return PeerClass.INTERNET if value is None else PeerClass(value[0])
