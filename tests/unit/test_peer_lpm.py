"""The LPM trie's key layout and the update plan (pure; the kernel side is an integration test)."""

from __future__ import annotations

import struct

import pytest

from otel_netreceiver.peers.classes import PeerClass, build_table
from otel_netreceiver.peers.lpm import class_of, declaration, pack_key, plan, rows


def test_the_key_is_a_host_order_prefix_length_then_the_address_in_network_order() -> None:
    address = bytes(10) + b"\xff\xff" + bytes([10, 0, 32, 0])
    key = pack_key(96 + 19, address)
    assert len(key) == 20 and struct.unpack("=I", key[:4]) == (115,) and key[4:] == address
    with pytest.raises(ValueError, match="bad LPM key"):
        pack_key(129, address)
    with pytest.raises(ValueError, match="bad LPM key"):
        pack_key(32, bytes(4))


def test_the_declaration_matches_the_packed_layout() -> None:
    text = declaration("peers", 100)
    assert "struct peers_key { u32 prefixlen; u8 addr[16]; };" in text
    assert "BPF_LPM_TRIE(peers, struct peers_key, struct peers_value, 100);" in text


def test_plan_writes_new_and_changed_rows_longest_first_and_deletes_the_gone() -> None:
    old = rows(build_table("a", {"10.0.0.0/16": "a", "10.1.0.0/16": "b"},
                           node_addresses=["10.0.0.5"]))
    new = rows(build_table("a", {"10.0.0.0/16": "b", "10.1.0.0/16": "b"},
                           node_addresses=["10.0.0.6"]))
    steps = plan(old, new)
    put = dict(steps.put)
    assert (128, bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 6])) in put
    assert (128, bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 5])) in steps.delete
    changed = (96 + 16, bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 0]))
    assert put[changed][0] == PeerClass.OTHER_ZONE  # its zone changed: now the other zone
    assert [k[0] for k, _ in steps.put] == sorted((k[0] for k, _ in steps.put), reverse=True)
    assert plan(new, new).put == () and plan(new, new).delete == ()


def test_no_entry_means_internet() -> None:
    assert class_of(None) is PeerClass.INTERNET
    assert class_of((int(PeerClass.LINK_LOCAL), 0)) is PeerClass.LINK_LOCAL
