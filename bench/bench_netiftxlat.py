"""netiftxlat A/B: the previous program (LRU hash per skb) against the current one, in one run.

Both are attached to net:net_dev_queue / net:net_dev_xmit at the same time and see the same
UDP flood on lo; ns/event from each program's own /proc/self/fdinfo (kernel.bpf_stats_enabled).
The baseline's C is taken from git (``--baseline-commit``, default: the commit before the
rework), so the comparison needs a git checkout.

    sudo .venv/bin/python bench/bench_netiftxlat.py [--packets 200000]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
from pathlib import Path

from otel_netreceiver.bpf import programs
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.programs import render
from otel_netreceiver.bpf.tracefs import read_format

SOURCE = "otel_netreceiver/bpf/programs/netiftxlat.c"  # its path at the baseline commit
STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def flood(packets: int) -> None:
    """Each datagram: queue + xmit of itself and of the ICMP port-unreachable answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(packets):
        sock.sendto(b"x", ("127.0.0.1", 9))
    sock.close()


def fdinfo(fd: int) -> tuple[int, int]:
    info = dict(line.split(":\t", 1) for line in
                Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines() if ":\t" in line)
    return int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--baseline-commit", default="5d6b704")
    args = parser.parse_args()
    from bcc import BPF

    spec = PROBES["netiftxlat"]
    formats = {(a.category, a.event): read_format(a.category, a.event) for a in spec.attach}
    old_c = subprocess.run(["git", "show", f"{args.baseline_commit}:{SOURCE}"], check=True,
                           capture_output=True, text=True).stdout
    current = programs.source
    programs.source = lambda s: old_c if s is spec else current(s)
    try:
        baseline = render(spec, formats, {})
    finally:
        programs.source = current
    previous = STATS.read_text().strip()
    STATS.write_text("1\n")
    loaded = {}
    try:
        for label, text in (("baseline", baseline), ("current", render(spec, formats, {}))):
            bpf = BPF(text=text.encode())
            for attach in spec.attach:
                bpf.attach_tracepoint(tp=f"{attach.category}:{attach.event}".encode(),
                                      fn_name=attach.function.encode())
            loaded[label] = bpf
        fds = {(label, fn): bpf.funcs[fn.encode()].fd for label, bpf in loaded.items()
               for fn in ("on_queue", "on_xmit")}
        before = {key: fdinfo(fd) for key, fd in fds.items()}
        flood(args.packets)
        after = {key: fdinfo(fd) for key, fd in fds.items()}
    finally:
        STATS.write_text(previous + "\n")
        for bpf in loaded.values():
            bpf.cleanup()
    cost = {key: (after[key][0] - before[key][0]) / max(after[key][1] - before[key][1], 1)
            for key in fds}
    print(f"flood: {args.packets} UDP datagrams to a closed port on lo")
    for fn in ("on_queue", "on_xmit"):
        old, new = cost[("baseline", fn)], cost[("current", fn)]
        print(f"{fn:<9} baseline {old:7.1f} ns  current {new:7.1f} ns  ratio {old / new:.2f}x")
    mean_old = (cost[("baseline", "on_queue")] + cost[("baseline", "on_xmit")]) / 2
    mean_new = (cost[("current", "on_queue")] + cost[("current", "on_xmit")]) / 2
    print(f"mean per event: baseline {mean_old:.1f} ns, current {mean_new:.1f} ns")


if __name__ == "__main__":
    main()
