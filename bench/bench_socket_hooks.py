"""The socket-hook probes (dns, peers) on traffic that crosses a veth: the workload's cost and
each program's run time per packet end, against bpftrace's bare ``count()`` in the same run.

On loopback (bench_workload.py) every packet is the pod talking to itself: the peers probe
classes it same_pod without looking at its LPM trie. Here the workload thread (in the node's
namespace) ping-pongs UDP datagrams with an echo in one test pod (tests/support/pods.py:
namespace, veth, cgroup), so each packet end is classed by the peer table (the table without
zones: the test addresses are other_vpc) and runs the programs the agent loads
(collectors/ebpf.py, ``--probes``). Rounds alternate without and with the programs attached
(bench_workload.Attached); the overhead is the median of "with minus the mean of the two
rounds without around it". A last pass with kernel.bpf_stats_enabled=1 gives each program's
run_time_ns / run_cnt, and, in the same pass, that of
``bpftrace -e 'tracepoint:net:net_dev_queue { @ = count(); }'`` (a tracepoint each of these
packets fires once per device it leaves), read from bpftrace's own fdinfo.

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_socket_hooks.py
        [--probes dns,peers] [--rounds 5] [--ops 20000]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import bpf_stats
from bench.bench_workload import Attached, paired, us_per_op
from tests.support.pods import Pod, create_pod, destroy_pod, kernel_supports_test_pods

POD_INDEX = 231
CPU = 0
PORT = 7007
ECHO = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind((sys.argv[1], int(sys.argv[2])))\nprint('ready', flush=True)\n"
        "while True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(data, peer)\n")
BPFTRACE = "tracepoint:net:net_dev_queue { @ = count(); }"


def veth_pingpong(pod: Pod, ops: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((pod.pod_ip, PORT))
    for _ in range(ops):
        s.send(b"ping")
        s.recv(64)
    s.close()


def _wait_ready(proc: subprocess.Popen, what: str, stream: object) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1)
        if ready and "ready" in stream.readline():  # type: ignore[attr-defined]
            return
        if ready and proc.poll() is not None:
            break
    raise RuntimeError(f"{what} did not start")


def _bpftrace() -> subprocess.Popen:
    """bpftrace attached (it prints "Attaching 1 probe..." before it runs; a marker probe
    on BEGIN prints 'ready' once the probes are attached)."""
    proc = subprocess.Popen(["bpftrace", "-e", f"BEGIN {{ printf(\"ready\\n\"); }} {BPFTRACE}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(proc, "bpftrace", proc.stdout)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"bpftrace did not start: {proc.communicate()[1][-500:]}") from None
    return proc


def fd_stats(pid: int) -> dict[int, tuple[int, int]]:
    """prog_id → (run_time_ns, run_cnt) of the BPF programs process ``pid`` holds."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        if "prog_id" in info and "run_cnt" in info:
            out[int(info["prog_id"])] = (int(info["run_time_ns"]), int(info["run_cnt"]))
    return out


def overhead(agent: Attached, pod: Pod, rounds: int, ops: int) -> None:
    without: list[float] = []
    with_: list[float] = []
    for index in range(2 * rounds + 1):
        attached = index % 2 == 1
        agent.attach() if attached else agent.detach()
        (with_ if attached else without).append(us_per_op(lambda n: veth_pingpong(pod, n), ops))
    agent.detach()
    delta, ratio = paired(without, with_)
    print(f"veth_pingpong  without {statistics.median(without):.2f} us/op  with "
          f"{statistics.median(with_):.2f}  delta {delta:+.2f} us  {ratio:+.1%}   ("
          + " ".join(f"{v:.2f}" for v in without) + " / " + " ".join(f"{v:.2f}" for v in with_)
          + ")")


def program_costs(agent: Attached, pod: Pod, ops: int) -> None:
    """One pass with BPF statistics on: the agent's programs and bpftrace's count()."""
    tracer = _bpftrace()
    with bpf_stats():
        agent.attach()
        before, traced = agent.program_stats(), fd_stats(tracer.pid)
        veth_pingpong(pod, ops)
        after, traced_after = agent.program_stats(), fd_stats(tracer.pid)
        agent.detach()
        tracer.terminate()
        tracer.communicate(timeout=10)
    print(f"{'program':<36} {'runs':>8} {'ns/run':>8}   ({ops} round trips)")
    rows = {n: (after[n][0] - before[n][0], after[n][1] - before[n][1]) for n in after}
    rows.update({f"bpftrace count() prog {i}": (traced_after[i][0] - traced[i][0],
                                                traced_after[i][1] - traced[i][1])
                 for i in traced_after if i in traced})
    for name, (ns, runs) in rows.items():
        if runs:
            print(f"{name:<36} {runs:>8} {ns / runs:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", default="dns,peers", help="collectors.ebpf probes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=20000, help="round trips per round")
    args = parser.parse_args()
    reason = kernel_supports_test_pods()
    if reason:
        sys.exit(f"no test pods here: {reason}")
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    print(f"probes: {args.probes}")
    pod = create_pod(POD_INDEX)
    # both on one CPU: on two, which CPU runs the echo's wake-up and the veth's receive work
    # (charged to whichever thread is running there) changes from round to round
    os.sched_setaffinity(0, {CPU})
    echo = subprocess.Popen(["taskset", "-c", str(CPU), "ip", "netns", "exec", pod.netns,
                             sys.executable, "-c", ECHO, pod.pod_ip, str(PORT)],
                            stdout=subprocess.PIPE, text=True)
    agent = None
    try:
        _wait_ready(echo, "the echo", echo.stdout)
        agent = Attached([p for p in args.probes.split(",") if p], [])
        agent.collector.collect()  # the peer table into the kernel
        overhead(agent, pod, args.rounds, args.ops)
        program_costs(agent, pod, args.ops)
    finally:
        if agent is not None:
            agent.close()
        echo.kill()
        echo.wait()
        destroy_pod(pod)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
