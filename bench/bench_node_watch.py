"""What one Node watch event costs the agent: raw JSON lines against the client's model classes.

Every agent that classes traffic by peer watches the Node objects of the whole cluster
(k8s/nodes.py), so every node's status update reaches every node. This measures, in
one process, the CPU per event of the agent's path (``json.loads`` of the event line,
then ``node_info``: zone label, InternalIPs, pod CIDRs) against what
``kubernetes.watch.Watch`` does with ``deserialize`` on (``json.loads`` plus the
client's ``V1Node`` model), for a Node shaped as an EKS node reports itself (labels,
annotations, conditions, capacity, the images on the node), and the memory kept per
node: the agent's ``NodeInfo`` against the raw dict.

    python bench/bench_node_watch.py [--events 2000] [--images 40] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path)

from otel_netreceiver.k8s.nodes import node_info
from tests.support.k8s_api import make_node


def eks_node(index: int, images: int) -> dict[str, Any]:
    """A Node with the fields an EKS managed node group's kubelet fills in."""
    node = make_node(f"ip-10-0-{index // 250}-{index % 250}.ec2.internal", "us-east-1b",
                     (f"10.0.{index // 250}.{index % 250}",))
    meta, status = node["metadata"], node["status"]
    meta["labels"] |= {"eks.amazonaws.com/nodegroup": "workers", "node.kubernetes.io/"
                       "instance-type": "m6i.2xlarge", "kubernetes.io/arch": "amd64",
                       "eks.amazonaws.com/capacityType": "ON_DEMAND",
                       "k8s.io/cloud-provider-aws": "0123456789abcdef0123456789abcdef"}
    meta["annotations"] = {"alpha.kubernetes.io/provided-node-ip": status["addresses"][0]
                           ["address"], "node.alpha.kubernetes.io/ttl": "0",
                           "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    resources = {"cpu": "8", "memory": "32386544Ki", "pods": "58",
                 "ephemeral-storage": "83873772Ki", "hugepages-2Mi": "0"}
    stamp = "2026-12-06T20:00:00Z"
    status |= {
        "capacity": resources, "allocatable": resources,
        "conditions": [{"type": t, "status": "False" if t != "Ready" else "True",
                        "lastHeartbeatTime": stamp, "lastTransitionTime": stamp,
                        "reason": f"Kubelet{t}", "message": f"kubelet reports {t}"}
                       for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": "ec2" + "0" * 29, "systemUUID": "ec2" + "1" * 33,
                     "bootID": "b" * 36, "kernelVersion": "6.1.119-129.201.amzn2023.x86_64",
                     "osImage": "Amazon Linux 2023.6.20241212", "containerRuntimeVersion":
                     "containerd://1.7.23", "kubeletVersion": "v1.31.3-eks-59bf375",
                     "kubeProxyVersion": "v1.31.3-eks-59bf375", "operatingSystem": "linux",
                     "architecture": "amd64"},
        "images": [{"names": [f"602401143452.dkr.ecr.us-east-1.amazonaws.com/app-{i}@sha256:"
                              + "a" * 64, f"602401143452.dkr.ecr.us-east-1.amazonaws.com/"
                              f"app-{i}:v1.{i}.0"], "sizeBytes": 10_000_000 + i}
                   for i in range(images)]}
    return node


def _lines(events: int, images: int) -> list[bytes]:
    return [json.dumps({"type": "MODIFIED", "object": eks_node(i, images)}).encode()
            for i in range(events)]


def agent_path(lines: list[bytes]) -> float:
    started = time.thread_time_ns()
    for line in lines:
        node_info(json.loads(line)["object"])
    return (time.thread_time_ns() - started) / len(lines)


def client_path(lines: list[bytes]) -> float:
    """What kubernetes.watch.Watch.unmarshal_event does per line with deserialize on."""
    from kubernetes import client

    api = client.ApiClient()
    started = time.thread_time_ns()
    for line in lines:
        event = json.loads(line)
        api._ApiClient__deserialize(event["object"], "V1Node")
    return (time.thread_time_ns() - started) / len(lines)


def kept_bytes(lines: list[bytes], keep: Any) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [keep(json.loads(line)["object"]) for line in lines]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / len(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    lines = _lines(args.events, args.images)
    agent, model = [], []
    for _ in range(args.repeat):  # interleaved, so machine noise hits both alike
        agent.append(agent_path(lines))
        model.append(client_path(lines))
    a, m = statistics.median(agent), statistics.median(model)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.events} MODIFIED events of "
          f"{statistics.mean(map(len, lines)) / 1024:.1f} KiB, {args.repeat} runs, medians")
    print(f"{'path':42} {'us/event':>9}")
    print(f"{'raw JSON line + node_info (agent)':42} {a / 1000:9.1f}")
    print(f"{'JSON + V1Node model (deserialize on)':42} {m / 1000:9.1f}   x{m / a:.1f}")
    raw, info = kept_bytes(lines, lambda o: o), kept_bytes(lines, node_info)
    print(f"kept per node: NodeInfo {info:.0f} B, raw dict {raw:.0f} B (x{raw / info:.0f})")
    for nodes in (500, 5000):  # kubelet status every 5 min at least (nodeStatusReportFrequency)
        rate = nodes / 300
        print(f"{nodes} nodes, one status update each per 5 min: {rate:.1f} events/s, "
              f"{rate * a / 1e6:.2f} ms CPU/s (agent) vs {rate * m / 1e6:.2f} ms (model)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
