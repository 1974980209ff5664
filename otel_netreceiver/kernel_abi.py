"""Numbers the kernel fixes in its user-space ABI, named once for Python and the BPF C.

Every value here is stable ABI: it appears in /proc files, tracepoint fields
or socket structures and the kernel does not renumber it. The BPF programs get
the same names through ``c_defines()``: ``python -m otel_netreceiver.kernel_abi``
writes ``bpf/include/kernel_abi.h`` and a test keeps it equal to this module,
so a literal such as ``state != 6`` is written nowhere.
"""

from __future__ import annotations

import enum


class TcpState(enum.IntEnum):
    """include/net/tcp_states.h (also the hex ``st`` column of /proc/net/tcp)."""

    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECV = 3
    FIN_WAIT1 = 4
    FIN_WAIT2 = 5
    TIME_WAIT = 6
    CLOSE = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11
    NEW_SYN_RECV = 12
    BOUND_INACTIVE = 13


# Not a kernel state: what the probes write when a packet had no socket (the
# tcp_send_reset tracepoint's skb-only path; ACK Net Exporter's TCPRESET_NOSOCK).
NO_SOCKET_STATE = 255

# include/linux/socket.h
AF_INET = 2
AF_INET6 = 10

# include/linux/interrupt.h, enum of softirq vectors (NET_TX_SOFTIRQ, NET_RX_SOFTIRQ)
SOFTIRQ_NET_TX = 2
SOFTIRQ_NET_RX = 3

TCP_STATE_NAMES: dict[int, str] = {
    **{state.value: state.name.lower() for state in TcpState},
    NO_SOCKET_STATE: "no_socket",
}
SOFTIRQ_VECTOR_NAMES: dict[int, str] = {SOFTIRQ_NET_TX: "NET_TX", SOFTIRQ_NET_RX: "NET_RX"}


def tcp_state_name(state: int) -> str:
    """The lower-case kernel name of a TCP state, or its number when unknown."""
    return TCP_STATE_NAMES.get(state, str(state))


def c_defines() -> str:
    """The same constants as C macros, for the BPF programs (a pure function)."""
    # no include guard: bpf/programs.py renders it once at the top of each program's text
    lines = ["// Generated from otel_netreceiver/kernel_abi.py by c_defines(); do not edit."]
    lines += [f"#define ONR_TCP_{state.name} {state.value}" for state in TcpState]
    lines += [f"#define ONR_NO_SOCKET_STATE {NO_SOCKET_STATE}",
              f"#define ONR_AF_INET {AF_INET}", f"#define ONR_AF_INET6 {AF_INET6}",
              f"#define ONR_SOFTIRQ_NET_TX {SOFTIRQ_NET_TX}",
              f"#define ONR_SOFTIRQ_NET_RX {SOFTIRQ_NET_RX}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    """``python -m otel_netreceiver.kernel_abi`` rewrites bpf/include/kernel_abi.h."""
    from pathlib import Path

    header = Path(__file__).parent / "bpf" / "include" / "kernel_abi.h"
    header.write_text(c_defines())


if __name__ == "__main__":
    main()
