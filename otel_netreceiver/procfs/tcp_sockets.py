"""``/proc/<pid>/net/tcp`` and ``tcp6``: a summary of a namespace's TCP sockets (tcpsummary).

Each line after the header is one socket (net/ipv4/tcp_ipv4.c, get_tcp4_sock):
``sl local rem st tx_queue:rx_queue ...`` with hex state (include/net/tcp_states.h:
1 = ESTABLISHED, 6 = TIME_WAIT) and hex queue sizes in bytes. TIME_WAIT lines
print queues as 0; a listener's are its accept backlog, not bytes, so they are left out.
Every other state can hold data: CLOSE_WAIT with unread bytes, FIN_WAIT1 with unsent ones
(a peer that stopped reading keeps them there), so queues are summed over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_netreceiver.kernel_abi import TcpState
from otel_netreceiver.procfs.errors import ParseError

TCP_ESTABLISHED, TCP_TIME_WAIT, TCP_LISTEN = (TcpState.ESTABLISHED, TcpState.TIME_WAIT,
                                              TcpState.LISTEN)


@dataclass(frozen=True, slots=True)
class TcpSummary:
    established: int = 0
    time_wait: int = 0
    listen: int = 0
    tx_queue_bytes: int = 0  # of every socket but listeners
    rx_queue_bytes: int = 0

    def __add__(self, other: TcpSummary) -> TcpSummary:
        return TcpSummary(self.established + other.established, self.time_wait + other.time_wait,
                          self.listen + other.listen, self.tx_queue_bytes + other.tx_queue_bytes,
                          self.rx_queue_bytes + other.rx_queue_bytes)


def summarize_tcp(text: str, source: str = "net/tcp") -> TcpSummary:
    established = time_wait = listen = tx = rx = 0
    for lineno, line in enumerate(text.splitlines()[1:], start=2):
        fields = line.split()
        if len(fields) < 5 or ":" not in fields[4]:
            raise ParseError(source, lineno, f"expected 'sl local rem st tx:rx ...', got {line!r}")
        try:
            state = int(fields[3], 16)
            tx_hex, _, rx_hex = fields[4].partition(":")
            tx_q, rx_q = int(tx_hex, 16), int(rx_hex, 16)
        except ValueError as exc:
            raise ParseError(source, lineno, f"not a hex number: {exc}") from exc
        if state == TCP_LISTEN:
            listen += 1
            continue
        tx += tx_q
        rx += rx_q
        if state == TCP_ESTABLISHED:
            established += 1
        elif state == TCP_TIME_WAIT:
            time_wait += 1
    return TcpSummary(established, time_wait, listen, tx, rx)
