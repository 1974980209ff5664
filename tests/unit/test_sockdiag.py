"""sock_diag messages: the request's layout and the RTT read out of a real tcp_info.

The tcp_info bytes come from the running kernel (getsockopt TCP_INFO on a loopback
connection, the same struct the kernel puts in INET_DIAG_INFO), wrapped the way
inet_diag_dump_one_icsk frames them, so the offsets are checked against this kernel, not
against a copy of the header.
"""

from __future__ import annotations

import socket
import struct

import pytest

from otel_netreceiver.kernel_abi import AF_INET, TcpState
from otel_netreceiver.sockdiag.tcpinfo import (
    NLMSG_DONE,
    NLMSG_ERROR,
    SOCK_DIAG_BY_FAMILY,
    TCPDIAG_GETSOCK,
    DiagError,
    SocketRtt,
    dump_request,
    dump_request_both,
    parse_dump,
    summarize,
)


def _message(kind: int, body: bytes) -> bytes:
    framed = struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body
    return framed + b"\0" * (-len(framed) % 4)


def _diag(tcp_info: bytes, rqueue: int = 0, wqueue: int = 0) -> bytes:
    msg = struct.pack("=BBBB48xIIIII", AF_INET, TcpState.ESTABLISHED, 0, 0, 0, rqueue, wqueue,
                      0, 1234)
    rta = struct.pack("=HH", 4 + len(tcp_info), 2) + tcp_info
    return _message(SOCK_DIAG_BY_FAMILY, msg + rta + b"\0" * (-len(rta) % 4))


@pytest.fixture
def kernel_tcp_info() -> tuple[bytes, tuple[int, int, int]]:
    """A loopback connection's tcp_info, and (rtt, rttvar, min_rtt) read field by field."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            for _ in range(20):
                client.sendall(b"x" * 1000)
                peer.recv(4096)
            info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
    # struct tcp_info: 8 u8 fields, then u32s; tcpi_rtt is the 16th u32, min_rtt the 36th
    u32 = struct.unpack_from("=40I", info, 8)
    return info, (u32[15], u32[16], u32[35])


def test_the_request_asks_for_established_tcp_sockets_with_tcp_info() -> None:
    request = dump_request(AF_INET, seq=7)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    family, protocol, ext, states = struct.unpack_from("=BBBxI", request, 16)
    assert (length, len(request), kind, seq) == (72, 72, SOCK_DIAG_BY_FAMILY, 7)
    assert flags == 0x301 and (family, protocol) == (AF_INET, 6)
    assert ext == 1 << 1 and states == 1 << TcpState.ESTABLISHED


def test_one_request_dumps_both_families_through_the_original_message() -> None:
    request = dump_request_both(seq=3)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    family, _, _, ext = struct.unpack_from("=BBBB", request, 16)
    states, dbs = struct.unpack_from("=II", request, 16 + 4 + 48)
    assert (length, len(request), kind, flags, seq) == (76, 76, TCPDIAG_GETSOCK, 0x301, 3)
    assert (family, ext, states, dbs) == (0, 1 << 1, 1 << TcpState.ESTABLISHED, 0)


def test_the_rtt_of_a_real_socket_is_read_from_its_tcp_info(kernel_tcp_info) -> None:
    info, (rtt, rttvar, min_rtt) = kernel_tcp_info
    assert rtt > 0 and min_rtt > 0  # a connection that carried data has samples
    data = _diag(info, rqueue=5, wqueue=9) + _diag(info) + _message(NLMSG_DONE, b"\0" * 4)
    sockets, done = parse_dump(data)
    assert done and sockets == [SocketRtt(rtt, rttvar, min_rtt, 5, 9), SocketRtt(rtt, rttvar,
                                                                                 min_rtt, 0, 0)]


def test_a_dump_split_over_reads_is_not_done_until_its_done_message(kernel_tcp_info) -> None:
    sockets, done = parse_dump(_diag(kernel_tcp_info[0]))
    assert len(sockets) == 1 and not done


def test_an_old_kernels_short_tcp_info_has_no_min_rtt_and_no_sample_is_skipped() -> None:
    old = struct.pack("=8x40I", *([0] * 15 + [3000, 500] + [0] * 23))[:104]
    unsampled = bytes(len(old))
    sockets, _ = parse_dump(_diag(old) + _diag(unsampled))
    assert sockets == [SocketRtt(3000, 500, 0, 0, 0)]


def test_an_error_answer_and_a_truncated_message_are_errors() -> None:
    with pytest.raises(DiagError, match="errno 1"):
        parse_dump(_message(NLMSG_ERROR, struct.pack("=i", -1) + b"\0" * 16))
    with pytest.raises(DiagError, match="length"):
        parse_dump(struct.pack("=IHHII", 400, SOCK_DIAG_BY_FAMILY, 2, 1, 0))


def test_a_summary_is_mean_max_and_the_lowest_floor_in_seconds() -> None:
    summary = summarize([SocketRtt(300_000, 90_000, 100_000, 0, 0),
                         SocketRtt(100, 50, 0, 0, 0)])
    assert summary.sockets == 2
    assert summary.srtt_max == pytest.approx(0.3) and summary.srtt_mean == pytest.approx(0.15005)
    assert summary.rttvar_max == pytest.approx(0.09)
    assert summary.min_rtt_min == pytest.approx(0.1)  # a socket without a floor is left out


def test_a_namespace_the_probe_cannot_enter_is_the_probes_error_not_the_cycles(tmp_path) -> None:
    from otel_netreceiver.collectors.podnet.probes import Target
    from otel_netreceiver.collectors.podnet.tcprtt import tcprtt
    from otel_netreceiver.procfs.errors import ParseError

    (tmp_path / "42" / "ns").mkdir(parents=True)
    (tmp_path / "42" / "ns" / "net").write_text("not a namespace")  # setns: EINVAL
    with pytest.raises(ParseError, match=r"42/ns/net sock_diag.*CAP_SYS_ADMIN"):
        tcprtt(Target(str(tmp_path), 42, (42,), (), None))
    # a process that exited: nothing this cycle, no error
    assert tcprtt(Target(str(tmp_path), 43, (43,), (), None)) == []
