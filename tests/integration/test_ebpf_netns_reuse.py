"""A dead namespace's kernel counts never reach the namespace that reuses its inode.

The kernel hands a freed namespace's inode number to the next namespace it creates
(fs/nsfs.c, ida allocation of the lowest free number), so a map keyed by inode would carry
the dead pod's drops into the new pod's series. Keyed by the namespace cookie
(bpf/include/netns.h), the dead entries are deleted and the new namespace starts at zero.
Real namespaces (``unshare --net``), real drops (UDP to a closed port: NO_SOCKET).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from otel_netreceiver.netns.discovery import netns_cookie
from otel_netreceiver.netns.resolver import NetnsResolver
from tests.support.pods import _die_with_parent, reap

pytestmark = pytest.mark.root
MAX_TRIES = 300  # namespaces created while waiting for the dead one's inode to come back

if os.geteuid() != 0 or not Path("/sys/kernel/btf/vmlinux").exists():
    pytest.skip("needs root and BTF", allow_module_level=True)
if netns_cookie("/proc/self/ns/net") is None:
    pytest.skip("this kernel has no NS_GET_ID: maps stay keyed by inode",
                allow_module_level=True)


def _namespace() -> subprocess.Popen:
    return subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up; exec sleep 600"],
                            preexec_fn=_die_with_parent)


def _inode(proc: subprocess.Popen) -> int:
    for _ in range(100):  # until sh has unshared
        link = os.readlink(f"/proc/{proc.pid}/ns/net")
        if link != os.readlink("/proc/self/ns/net"):
            return int(link[5:-1])
        time.sleep(0.02)
    raise AssertionError("unshare never entered a new namespace")


def _drops(proc: subprocess.Popen, count: int) -> None:
    script = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"for _ in range({count}): s.sendto(b'x', ('127.0.0.1', 9))")
    time.sleep(0.1)  # lo up
    subprocess.run(["nsenter", "-t", str(proc.pid), "-n", "python3", "-c", script], check=True)


def _no_socket(collection: Collection, inode: int) -> float:
    return sum(p.value for p in collection.points  # type: ignore[misc]
               if p.metric.name == "netreceiver.pod.packet.drops"
               and dict(p.attributes).get("netns.inode") == str(inode)
               and dict(p.attributes).get("drop.reason") == "NO_SOCKET")


def _reuse(inode: int) -> tuple[subprocess.Popen, list[subprocess.Popen]]:
    """A new namespace with ``inode``, and the others made while waiting for it."""
    others = []
    for _ in range(MAX_TRIES):
        proc = _namespace()
        if _inode(proc) == inode:
            return proc, others
        others.append(proc)
    reap(others)
    pytest.skip(f"inode {inode} was not reused in {MAX_TRIES} new namespaces")


def test_a_new_namespace_on_a_dead_ones_inode_starts_from_zero() -> None:
    resolver = NetnsResolver("/proc", NoPods())
    collector = EbpfCollector(EbpfConfig(probes=["packetloss"]), "/proc", NoPods(), resolver)
    assert collector.statuses() == {"packetloss": ""}, collector.statuses()
    others: list[subprocess.Popen] = []
    try:
        dead = _namespace()
        inode = _inode(dead)
        dead_cookie = netns_cookie(f"/proc/{dead.pid}/ns/net")
        _drops(dead, 25)
        assert _no_socket(collector.collect(), inode) == 25
        _drops(dead, 5)  # counted in the kernel, never read while the namespace lived
        reap([dead])
        born, others = _reuse(inode)
        others.append(born)
        cookie = netns_cookie(f"/proc/{born.pid}/ns/net")
        assert cookie is not None and cookie != dead_cookie  # same inode, another namespace
        first = collector.collect()
        assert _no_socket(first, inode) == 0  # none of the dead one's 30
        keys = {key.netns for key, _ in collector._loaded["packetloss"][b"drops"].items()}
        assert dead_cookie not in keys  # deleted from the kernel map
        _drops(born, 7)
        assert _no_socket(collector.collect(), inode) == 7
    finally:
        reap(others)
        collector.close()
