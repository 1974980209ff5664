"""net/tcp summary: queued bytes of every socket that can hold data, never a listener's backlog."""

from __future__ import annotations

import pytest

from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.tcp_sockets import summarize_tcp

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode\n")


def _line(sl: int, state: int, tx: int, rx: int) -> str:
    return (f"{sl:4d}: 0100007F:1F90 0100007F:D431 {state:02X} {tx:08X}:{rx:08X} 00:00000000 "
            f"00000000     0        0 {1000 + sl} 1 0000000000000000 20 4 30 10 -1\n")


def test_fin_wait1_and_close_wait_bytes_count_listener_backlog_does_not() -> None:
    text = HEADER + "".join((
        _line(0, 0x0A, 0, 129),      # LISTEN: rx is its accept backlog (129 waiting), not bytes
        _line(1, 0x01, 100, 200),    # ESTABLISHED
        _line(2, 0x04, 65536, 0),    # FIN_WAIT1 with unsent bytes: the peer stopped reading
        _line(3, 0x08, 0, 4096),     # CLOSE_WAIT with unread bytes
        _line(4, 0x06, 0, 0),        # TIME_WAIT
    ))
    summary = summarize_tcp(text)
    assert (summary.listen, summary.established, summary.time_wait) == (1, 1, 1)
    assert summary.tx_queue_bytes == 100 + 65536
    assert summary.rx_queue_bytes == 200 + 4096


def test_a_damaged_line_names_the_file_and_line() -> None:
    with pytest.raises(ParseError, match=r"1/net/tcp.*3"):
        summarize_tcp(HEADER + _line(1, 1, 1, 1) + "   2: garbage\n", "1/net/tcp")
