"""Kernel ABI numbers: named once, the same in Python and in the BPF programs' header."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import otel_netreceiver.bpf
from otel_netreceiver.kernel_abi import (
    AF_INET,
    AF_INET6,
    NO_SOCKET_STATE,
    TcpState,
    c_defines,
    tcp_state_name,
)

HEADER = Path(otel_netreceiver.bpf.__file__).parent / "include" / "kernel_abi.h"


def test_the_checked_in_header_is_the_rendering_of_the_module() -> None:
    assert HEADER.read_text() == c_defines(), (
        "bpf/include/kernel_abi.h is stale: run python -m otel_netreceiver.kernel_abi")


def test_every_define_is_distinct_and_numeric() -> None:
    defines = re.findall(r"^#define (\w+) (\d+)$", c_defines(), re.M)
    names = [name for name, _ in defines]
    assert len(names) == len(set(names)) == len(TcpState) + 5


def test_address_families_agree_with_the_c_library() -> None:
    assert (AF_INET, AF_INET6) == (socket.AF_INET, socket.AF_INET6)


def test_tcp_states_agree_with_proc_net_tcp_of_a_real_listener(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        rows = Path("/proc/self/net/tcp").read_text().splitlines()[1:]
        states = {int(r.split()[3], 16) for r in rows if r.split()[1].endswith(f":{port:04X}")}
        assert states == {TcpState.LISTEN}
    finally:
        listener.close()


def test_names_are_the_kernel_names_and_unknown_states_stay_numbers() -> None:
    assert tcp_state_name(TcpState.TIME_WAIT) == "time_wait"
    assert tcp_state_name(NO_SOCKET_STATE) == "no_socket"
    assert tcp_state_name(99) == "99"
