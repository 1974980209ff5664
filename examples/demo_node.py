"""Run examples/orders_client.py on this machine as if on an EKS node whose ENI throttles DNS.

Needs root (network namespaces, cgroups). From the repository root, with the venv of
scripts/dev.sh:  `sudo .venv/bin/python examples/demo_node.py`

What it builds, all on this machine and nothing leaving it:
- two "pods" (tests/support/pods.py: a network namespace, a veth, a kubelet-named cgroup):
  `orders-client` runs the example app, `orders` runs a DNS server (CoreDNS's role) and an
  HTTP server; the app's namespace gets a resolv.conf pointing at that DNS server;
- the real agent, `otel-netreceiver run -c demo.yaml`, with its node API on a Unix socket
  (callers named by SO_PEERCRED → cgroup → pod) and its ENA collector replaying the AWS
  documentation's `ethtool -S` sample in which `linklocal_allowance_exceeded` grows by 600
  per read after the first (this machine has no ENA NIC);
- after three good calls the DNS server stops answering, as when the ENI drops the node's
  DNS packets over its 1024 packets/s link-local allowance, and the app explains its errors.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.ena_replay import write_growing_recording  # noqa: E402
from tests.support.pods import create_pod, destroy_pod, move_to_pod  # noqa: E402
from tests.support.sdk_node import link_pods, resolv_conf, start_peer  # noqa: E402

CONFIG = """
interval: 5s
jitter: 0
node_name: demo-node
log_level: warning
collectors:
  ena: {{replay: {recording}}}
  ebpf: {{enabled: false}}
  netdev: {{enabled: false}}
  nodenet: {{enabled: false}}
correlation:
  socket: {socket}
exporters:
  console: {{enabled: false}}
"""


def start_agent(work: Path) -> tuple[subprocess.Popen, Path]:
    recording, socket = work / "ena-linklocal.json", work / "api.sock"
    write_growing_recording(recording, grow="linklocal_allowance_exceeded", start_frame=1,
                            step=600, frames=200)
    config = work / "demo.yaml"
    config.write_text(CONFIG.format(recording=recording, socket=socket))
    agent = subprocess.Popen([str(Path(sys.executable).parent / "otel-netreceiver"), "run",
                              "-c", str(config)])
    deadline = time.monotonic() + 30
    while not socket.exists():
        if time.monotonic() > deadline or agent.poll() is not None:
            raise SystemExit("the agent did not open its socket")
        time.sleep(0.1)
    return agent, socket


def wait_until_listening(pod, ip: str, port: int) -> None:  # type: ignore[no-untyped-def]
    probe = f"import socket; socket.create_connection(('{ip}', {port}), timeout=1).close()"
    for _ in range(100):
        if pod.exec(sys.executable, "-c", probe, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {ip}:{port}")


def start_app(pod, socket: Path) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CALLS": "5", "INTERVAL": "1",
           "ORDERS_URL": "http://orders.shop.svc.cluster.local:8080/orders",
           "OTEL_NETRECEIVER_AGENT_SOCKET": str(socket), "K8S_NODE_NAME": "demo-node",
           "K8S_POD_NAME": "orders-client-7d9f", "K8S_POD_NAMESPACE": "shop",
           "K8S_POD_UID": pod.uid}
    # The shell waits until it is in the pod's cgroup (as a container runtime would have
    # put it), then becomes the app: same pid, so the agent names it by its cgroup.
    app = subprocess.Popen(["ip", "netns", "exec", pod.netns, "sh", "-c",
                            f"read go; exec {sys.executable} -u {ROOT}/examples/orders_client.py"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    move_to_pod(pod, app.pid)
    assert app.stdin is not None
    app.stdin.write("go\n")
    app.stdin.close()
    return app


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="netreceiver-demo-"))
    client, orders = create_pod(230, "cgroupfs"), create_pod(231, "systemd")
    started: list[subprocess.Popen] = []
    try:
        link_pods([client, orders])
        (work / "orders").write_text('[{"id": 1, "item": "coffee"}]\n')
        started.append(subprocess.Popen(
            ["ip", "netns", "exec", orders.netns, sys.executable, "-m", "http.server", "8080",
             "--bind", orders.pod_ip, "--directory", str(work)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        dns = start_peer(orders, "dns", orders.pod_ip, orders.pod_ip)
        started.append(dns)
        wait_until_listening(client, orders.pod_ip, 8080)
        agent, socket = start_agent(work)
        started.append(agent)
        with resolv_conf(client, f"nameserver {orders.pod_ip}\noptions timeout:1 attempts:2\n"):
            app = start_app(client, socket)
            started.append(app)
            assert app.stdout is not None
            good = 0
            for line in app.stdout:
                print(line, end="", flush=True)
                if line.startswith("call ") and " failed " not in line:
                    good += 1
                    if good == 3:
                        print("--- the DNS server's answers stop (ENI link-local throttling) ---")
                        dns.send_signal(signal.SIGUSR1)
            app.wait()
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pod in (client, orders):
            destroy_pod(pod)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
