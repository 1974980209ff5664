"""Link-local: route lookups, cgroup ids → pods, rows → points, address settings."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import uuid
from pathlib import Path

import pytest

from otel_netreceiver.bpf.probes.dns.linklocal import Peaks, _words, linklocal_points
from otel_netreceiver.bpf.probes.dns.spec import _words as spec_words
from otel_netreceiver.config.loader import ConfigError, load_text
from otel_netreceiver.dns.services import NodeService, ServiceAddresses
from otel_netreceiver.k8s.cgroupids import CgroupPods, walk_pod_cgroups
from otel_netreceiver.model import attrs
from otel_netreceiver.netns.egress import (
    RTM_GETROUTE,
    RouteLookup,
    parse_route_reply,
    route_request,
)

ip = ipaddress.ip_address


def test_a_route_request_carries_destination_source_and_input_interface() -> None:
    message = route_request(7, ip("169.254.169.253"), ip("10.0.1.5"), 12)
    length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", message)
    assert (length, kind, seq) == (len(message), RTM_GETROUTE, 7)
    family, dst_len, src_len = struct.unpack_from("=BBB", message, 16)
    assert (family, dst_len, src_len) == (socket.AF_INET, 32, 32)
    attributes = message[28:]
    assert attributes[4:8] == bytes([169, 254, 169, 253])  # RTA_DST first
    assert attributes[12:16] == bytes([10, 0, 1, 5])  # then RTA_SRC
    assert struct.unpack_from("=HHI", attributes, 16) == (8, 3, 12)  # RTA_IIF 12


def test_an_error_or_a_short_reply_has_no_interface() -> None:
    assert parse_route_reply(b"") is None
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -101) + b"\0" * 16
    assert parse_route_reply(error) is None


def test_the_kernel_routes_loopback_through_lo() -> None:
    """A real RTM_GETROUTE in this process's namespace (no privilege needed)."""
    lookup = RouteLookup()
    try:
        assert lookup.oif(ip("127.0.0.1")) == socket.if_nametoindex("lo")
        assert lookup.oif(ip("::1")) in (None, socket.if_nametoindex("lo"))
    finally:
        lookup.close()


def test_the_route_key_words_are_the_ones_the_program_compares() -> None:
    assert _words(ip("169.254.169.253"))[0] == spec_words(ip("169.254.169.253"))[0]
    assert _words(ip("169.254.169.253"))[1:] == (0, 0, 0)
    assert _words(ip("fd00:ec2::23")) == spec_words(ip("fd00:ec2::23"))


def _labels(netns: int, cgroup: int):  # type: ignore[no-untyped-def]
    if cgroup == 99:
        return attrs({"k8s.pod.uid": "host-pod", "netns.kind": "pod"})
    return attrs({"netns.inode": str(netns), "netns.kind": "pod"})


def test_rows_become_pod_interface_and_peak_points() -> None:
    names = {3: "eth0", 4: "eth1"}.get
    counts = [(7, 0, 3, 1, 10, 800), (7, 0, 0, 4, 5, 400), (1, 99, 4, 2, 2, 120),
              (1, 0, 4, 2, 1, 60)]
    totals = [(3, 1, 10), (4, 2, 3)]
    points = linklocal_points(counts, totals, {3: 1500, 4: 0}, _labels,
                              lambda i: names(i) or "unknown")
    by = {(p.metric.name, p.attributes): p.value for p in points}
    assert by[("netreceiver.pod.linklocal.packets", attrs({
        "netns.inode": "7", "netns.kind": "pod", "linklocal.service": "amazon_dns",
        "linklocal.answered_by": "eni", "network.interface.name": "eth0"}))] == 10
    assert by[("netreceiver.pod.linklocal.bytes", attrs({
        "netns.inode": "7", "netns.kind": "pod", "linklocal.service": "node_local_dns",
        "linklocal.answered_by": "node"}))] == 400  # node-answered: no interface
    assert by[("netreceiver.pod.linklocal.packets", attrs({
        "k8s.pod.uid": "host-pod", "netns.kind": "pod", "linklocal.service": "imds",
        "linklocal.answered_by": "eni", "network.interface.name": "eth1"}))] == 2
    assert by[("netreceiver.linklocal.packets", attrs({
        "network.interface.name": "eth1", "linklocal.service": "imds"}))] == 3
    peak = "netreceiver.linklocal.peak_packets_per_second"
    assert by[(peak, attrs({"network.interface.name": "eth0"}))] == 1500
    assert by[(peak, attrs({"network.interface.name": "eth1"}))] == 0


def test_cgroup_ids_are_directory_inodes_of_kubepods_pods(tmp_path: Path) -> None:
    uid = str(uuid.uuid4())
    pod = tmp_path / "kubepods.slice" / "kubepods-burstable.slice" / (
        f"kubepods-burstable-pod{uid.replace('-', '_')}.slice")
    container = pod / f"cri-containerd-{'ab' * 32}.scope"
    container.mkdir(parents=True)
    (tmp_path / "system.slice" / "chronyd.service").mkdir(parents=True)
    found = {i: p.pod_uid for i, p in walk_pod_cgroups(str(tmp_path)).items()}
    assert found == {os.stat(pod).st_ino: uid, os.stat(container).st_ino: uid}


def test_an_unknown_id_walks_once(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("")
    (tmp_path / "kubepods").mkdir()
    pods = CgroupPods(str(tmp_path))
    stranger = os.stat(tmp_path).st_ino
    assert pods.lookup([stranger, 0]) == {} and pods.walks == 1
    assert pods.lookup([stranger]) == {} and pods.walks == 1  # not a pod: no walk again
    uid = str(uuid.uuid4())
    (tmp_path / "kubepods" / f"pod{uid}").mkdir()
    new = os.stat(tmp_path / "kubepods" / f"pod{uid}").st_ino
    assert pods.lookup([new, stranger]) == {new: uid} and pods.walks == 2
    assert pods.gone([new, stranger]) == set()
    (tmp_path / "kubepods" / f"pod{uid}").rmdir()  # the pod was deleted
    assert pods.gone([new, stranger]) == {new}


def test_node_answered_services_and_an_address_given_twice() -> None:
    services = ServiceAddresses.build()
    assert services.node_service(ip("169.254.170.23")) is NodeService.POD_IDENTITY
    assert services.node_service(ip("fd00:ec2::23")) is NodeService.POD_IDENTITY
    assert services.node_service(ip("169.254.20.10")) is NodeService.NODE_LOCAL_DNS
    assert services.node_service(ip("169.254.169.253")) is None
    with pytest.raises(ValueError, match=r"c\.pod_identity: 169\.254\.169\.254 is also in "
                                         r"c\.imds"):
        ServiceAddresses.build(pod_identity=["169.254.169.254"], where="c")


def test_a_bad_address_in_the_configuration_names_its_key() -> None:
    text = "collectors:\n  ebpf:\n    dns:\n      pod_identity: [pod-identity.local]\n"
    with pytest.raises(ConfigError, match=r"collectors\.ebpf\.dns\.pod_identity.*"
                                          r"'pod-identity\.local' is not an IP address"):
        load_text(text)


def test_the_peak_is_per_read_or_over_the_window() -> None:
    since_read = Peaks(0)
    assert since_read({(3, 100): 1500, (3, 101): 20, (4, 101): 7}, 102, [3, 4, 5]) == {
        3: 1500, 4: 7, 5: 0}
    assert since_read({(3, 102): 2}, 103, [3, 4]) == {3: 2, 4: 0}  # reset by the read
    windowed = Peaks(15)
    windowed({(3, 100): 1500}, 101, [3])
    assert windowed({}, 105, [3]) == {3: 1500}  # a read between did not take it away
    assert windowed({(3, 110): 9}, 116, [3]) == {3: 9}  # 100 is out of the window
