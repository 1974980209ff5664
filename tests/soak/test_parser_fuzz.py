"""Every parser the agent feeds from the kernel or a file, under truncated, garbled and
extreme input: only the project's own parse error may escape.

tests/unit/test_procfs_parsers.py and test_ethtool_structs.py already fuzz the
/proc/net tables and the ethtool ioctl buffers; this covers the rest: BTF,
tracefs format files, kallsyms, slabinfo, /proc/<pid>/net/tcp, cgroup and io
files, ethtool -S text and ENA stat selection, recordings, the environment's
key=value lists and durations, namespace links, and extreme numbers in the
/proc/net tables. Seeds come from real files of this machine where they exist.
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_netreceiver.bpf.btf import BtfError, parse_btf
from otel_netreceiver.bpf.kallsyms import parse_kallsyms
from otel_netreceiver.bpf.tracefs import FormatError, parse_format
from otel_netreceiver.collectors.ena import parse_ena_stats
from otel_netreceiver.collectors.podnet.io_accounting import parse_proc_io
from otel_netreceiver.config.environment import parse_key_values
from otel_netreceiver.config.loader import parse_duration
from otel_netreceiver.ethtool.recording import (
    FORMAT,
    RecordingError,
    parse_ethtool_s,
    recording_from_json,
)
from otel_netreceiver.k8s.cgroup import parse_proc_cgroup, pod_of_process
from otel_netreceiver.netns.discovery import netns_inode
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.netdev import parse_net_dev
from otel_netreceiver.procfs.slabinfo import parse_slabinfo
from otel_netreceiver.procfs.snmp import parse_snmp
from otel_netreceiver.procfs.sockstat import parse_sockstat
from otel_netreceiver.procfs.tcp_sockets import summarize_tcp

pytestmark = pytest.mark.soak

DATA = Path(__file__).parent.parent / "data"
TRACEFS = sorted((DATA / "tracefs").glob("*.format"))
BTF = Path("/sys/kernel/btf/vmlinux")
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)
PROCISH = st.text(alphabet=st.sampled_from("0123456789abcdefABCDEF:;[]*-_ \t\nxTtWwfield"
                                           "offsetsizesigned"), max_size=400)
SLABINFO = ("slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> : tunables\n"
            "TCP 96 96 2368 13 8 : tunables 0 0 0 : slabdata 8 8 0\n"
            "tw_sock_TCP 0 0 248 16 1 : tunables 0 0 0 : slabdata 0 0 0\n")
TCP = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
       "timeout inode\n   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 "
       "00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n")


def _damaged(data: st.DataObject, text: str) -> str:
    """A real file cut at a random point with a few characters overwritten."""
    chars = list(text[:data.draw(st.integers(0, len(text)))])
    for _ in range(data.draw(st.integers(0, 5))):
        if chars:
            chars[data.draw(st.integers(0, len(chars) - 1))] = data.draw(
                st.sampled_from(list("0x:; \n\t[]*-9z")))
    return "".join(chars)


# --- BTF ---------------------------------------------------------------------------------

def _btf_prefix() -> bytes:
    if not BTF.is_file():
        pytest.skip(f"{BTF} absent: this kernel has no BTF to seed the fuzzing with")
    with BTF.open("rb") as handle:
        return handle.read(8192)


@FUZZ
@given(data=st.binary(max_size=600))
def test_btf_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(BtfError):
        parse_btf(data)


@FUZZ
@given(data=st.data())
def test_btf_real_header_with_lying_lengths_and_cuts(data: st.DataObject) -> None:
    real = bytearray(_btf_prefix())
    # lie about the section lengths and offsets, then cut the blob short
    for offset in data.draw(st.lists(st.sampled_from([4, 8, 12, 16, 20]), max_size=3)):
        struct.pack_into("<I", real, offset, data.draw(st.integers(0, 2**32 - 1)))
    cut = bytes(real[:data.draw(st.integers(0, len(real)))])
    with contextlib.suppress(BtfError):
        parse_btf(cut)


# --- tracefs format files, kallsyms -------------------------------------------------------

@FUZZ
@given(data=st.data(), which=st.integers(0, len(TRACEFS) - 1))
def test_tracefs_format_damaged(data: st.DataObject, which: int) -> None:
    with contextlib.suppress(FormatError):
        parse_format(_damaged(data, TRACEFS[which].read_text()), TRACEFS[which].stem)


@FUZZ
@given(text=PROCISH)
def test_tracefs_format_garbage(text: str) -> None:
    with contextlib.suppress(FormatError):
        parse_format(text, "fuzz:event")


@pytest.mark.parametrize("text", ["field: ;\toffset:0;\tsize:4;\tsigned:0;\n",
                                  "field:int *;\toffset:0;\tsize:4;\tsigned:0;\n"])
def test_tracefs_field_without_a_name_is_a_format_error(text: str) -> None:
    with pytest.raises(FormatError, match="a field without a name"):
        parse_format(text, "fuzz:event")


@FUZZ
@given(text=PROCISH)
def test_kallsyms_garbage_never_raises(text: str) -> None:
    symbols = parse_kallsyms(text)  # malformed lines are skipped: there is no error to name
    symbols.name(0xFFFFFFFF81000000)


# --- procfs text beyond /proc/net tables -----------------------------------------------------

@FUZZ
@given(data=st.data())
def test_slabinfo_damaged(data: st.DataObject) -> None:
    with contextlib.suppress(ParseError):
        parse_slabinfo(_damaged(data, SLABINFO))


@FUZZ
@given(data=st.data())
def test_tcp_table_damaged(data: st.DataObject) -> None:
    with contextlib.suppress(ParseError):
        summarize_tcp(_damaged(data, TCP * 3))


@FUZZ
@given(text=TEXT)
def test_cgroup_and_io_files_never_raise(text: str) -> None:
    parse_proc_cgroup(text)
    pod_of_process(text)
    assert all(v >= 0 for v in parse_proc_io(text).values())


@FUZZ
@given(link=TEXT)
def test_netns_links(link: str) -> None:
    inode = netns_inode(link)
    assert inode is None or inode >= 0


EXTREME = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**64 - 1, 2**63, -1, 0]))


@FUZZ
@given(values=st.lists(EXTREME, min_size=16, max_size=16))
def test_net_dev_extreme_numbers(values: list[int]) -> None:
    line = "  eth0: " + " ".join(str(v) for v in values)
    text = "Inter-| head\n face |bytes\n" + line + "\n"
    with contextlib.suppress(ParseError):
        [dev] = parse_net_dev(text)
        assert dev.interface == "eth0"


@FUZZ
@given(value=EXTREME)
def test_snmp_and_sockstat_extreme_numbers(value: int) -> None:
    assert parse_snmp(f"Tcp: MaxConn\nTcp: {value}\n")["Tcp"]["MaxConn"] == value
    with contextlib.suppress(ParseError):
        parse_sockstat(f"TCP: inuse {value} orphan 0\n")


# --- ethtool text, ENA selection, recordings ---------------------------------------------------

@FUZZ
@given(text=TEXT)
def test_ethtool_s_text_never_raises(text: str) -> None:
    for _name, value in parse_ethtool_s(text):
        assert value >= 0


@FUZZ
@given(stats=st.dictionaries(st.sampled_from(["bw_in_allowance_exceeded", "pps_allowance_exceeded",
                                              "conntrack_allowance_available", "x", ""]),
                             EXTREME))
def test_ena_selection_takes_any_numbers(stats: dict[str, int]) -> None:
    parse_ena_stats(stats)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


@FUZZ
@given(doc=JSON, frames=JSON)
def test_recording_documents(doc: object, frames: object) -> None:
    for candidate in (doc, {"format": FORMAT,
                            "interfaces": {"eth0": {"drvinfo": "AAAA", "frames": frames}}}):
        with contextlib.suppress(RecordingError):
            recording_from_json(json.loads(json.dumps(candidate)))


# --- configuration values from the environment --------------------------------------------

@FUZZ
@given(text=TEXT)
def test_environment_key_values_and_durations(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_key_values(text)
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0
