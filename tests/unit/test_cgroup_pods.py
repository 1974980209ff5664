"""Pod attribution from cgroup paths, for both kubelet cgroup drivers, v1 and v2, three runtimes."""

from __future__ import annotations

import pytest

from otel_netreceiver.k8s.cgroup import pod_from_path, pod_of_process

UID = "3f1c2b9a-7d4e-4c1b-9a2f-0e6d5c4b3a21"
CID = "8d2f0c3b1a9e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060f5e"


@pytest.mark.parametrize(
    ("path", "container"),
    [
        # cgroupfs driver (v1 or v2), containerd / docker: container id as the leaf
        (f"/kubepods/burstable/pod{UID}/{CID}", CID),
        (f"/kubepods/besteffort/pod{UID}/{CID}", CID),
        (f"/kubepods/pod{UID}/{CID}", CID),  # Guaranteed QoS: directly under kubepods
        # systemd driver: dashes escaped to underscores, runtime-specific scope names
        (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}"
         f".slice/cri-containerd-{CID}.scope", CID),
        (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}"
         f".slice/crio-{CID}.scope", CID),
        (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/docker-{CID}.scope", CID),
        # the pod-level cgroup itself
        (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}"
         ".slice", ""),
    ],
)
def test_pod_uid_and_container(path: str, container: str) -> None:
    pod = pod_from_path(path)
    assert pod is not None
    assert pod.pod_uid == UID
    assert pod.container_id == container


@pytest.mark.parametrize("path", ["/", "/system.slice/containerd.service",
                                  "/user.slice/user-0.slice/session-1.scope",
                                  f"/notkube/pod{UID}/x"])
def test_non_pod_cgroups(path: str) -> None:
    assert pod_from_path(path) is None


def test_proc_cgroup_file_v1_and_v2() -> None:
    v1 = (f"12:memory:/kubepods/burstable/pod{UID}/{CID}\n"
          f"11:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n1:name=systemd:/\n")
    v2 = (f"0::/kubepods.slice/kubepods-burstable.slice/"
          f"kubepods-burstable-pod{UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n")
    assert pod_of_process(v1).pod_uid == UID
    assert pod_of_process(v2).container_id == CID
    assert pod_of_process("0::/system.slice/kubelet.service\n") is None
    assert pod_of_process("garbage without colons\n") is None
