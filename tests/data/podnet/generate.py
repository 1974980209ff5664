"""Writes tests/data/podnet/cycle{0,1,2} from the real kernel files of tests/data/proc/1/net.

Run from the repository root: python tests/data/podnet/generate.py . (see README.md)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

UID_A = "3f1c2a7e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
UID_B = "8d7e6f5a-4b3c-4d2e-8f1a-0b9c8d7e6f5a"
UID_C = "c0ffee00-1234-4abc-9def-0123456789ab"
# pid -> (inode, cgroup text, comm, cycles present, has snmp6, has conntrack)
NS = {
    1: (4026531840, "0::/init.scope\n", "systemd", (0, 1, 2), True, True),
    101: (4026532101, f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
          f"{UID_A.replace('-', '_')}.slice/cri-containerd-{'a' * 64}.scope\n", "pause",
          (0, 1, 2), True, True),
    102: (4026532102, f"5:cpu:/kubepods/besteffort/pod{UID_B}/{'b' * 64}\n"
          f"1:name=systemd:/kubepods/besteffort/pod{UID_B}/{'b' * 64}\n", "pause",
          (0, 1, 2), False, True),
    103: (4026532103, "0::/system.slice/chronyd.service\n", "chronyd", (0, 1), True, False),
    104: (4026532104, f"0::/kubepods.slice/kubepods-pod{UID_C.replace('-', '_')}.slice/"
          f"cri-containerd-{'c' * 64}.scope\n", "pause", (2,), True, True),
}
EXTRA_PIDS = {101: (105,)}  # a second process in pod A's namespace


def delta(pid, cycle, i):
    if pid == 1:
        cycle = min(cycle, 1)  # the host is idle between cycles 1 and 2
    return cycle * (i % 4) * (pid % 7 + 1) if (i + pid) % 3 else 0


def pairs(text, pid, cycle):
    lines = text.splitlines()
    out = []
    for k in range(0, len(lines), 2):
        head, vals = lines[k], lines[k + 1]
        proto, _, rest = vals.partition(":")
        nums = [int(v) + delta(pid, cycle, i + k) for i, v in enumerate(rest.split())]
        out += [head, proto + ": " + " ".join(map(str, nums))]
    return "\n".join(out) + "\n"


def snmp6(text, pid, cycle):
    out = []
    for i, line in enumerate(text.splitlines()):
        name, value = line.split()
        out.append(f"{name:<32}{int(value) + delta(pid, cycle, i)}")
    return "\n".join(out) + "\n"


def dev(pid, cycle):
    head = BASE.joinpath("dev").read_text().splitlines()[:2]
    rows = [("lo", 1000 * pid + 300 * cycle)]
    eth0 = 50000 * pid + 7000 * cycle
    if pid == 102 and cycle == 2:
        eth0 = 900  # recreated: counters start again lower
    rows.append(("eth0", eth0))
    if pid == 102 and cycle >= 1:
        rows.append(("eth1", 0 if cycle == 1 else 4242))  # appears quiet, then moves
    if pid == 1:
        rows.append(("ens5", 10 ** 10 + 10 ** 6 * min(cycle, 1)))
    lines = list(head)
    for name, b in rows:
        rx = [b, b // 100, cycle if name == "eth0" else 0, (pid + cycle) % 2, 0, 0, 0, 0]
        tx = [b // 2, b // 200, 0, cycle * (pid % 2), 0, 0, 0, 0]
        lines.append(f"{name:>6}: " + " ".join(f"{v:>8}" for v in rx + tx))
    return "\n".join(lines) + "\n"


def sockstat(pid, cycle):
    tw = cycle * (pid % 3)
    return (f"sockets: used {10 + cycle}\nTCP: inuse {pid % 5 + cycle} orphan 0 tw {tw} "
            f"alloc {pid % 5 + cycle} mem {cycle}\nUDP: inuse {cycle % 2} mem 0\n"
            "UDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n")


def conntrack(pid, cycle):
    lines = BASE.joinpath("stat/nf_conntrack").read_text().splitlines()
    names = lines[0].split()
    rows = [lines[0]]
    for cpu in range(2):
        vals = []
        for j, name in enumerate(names):
            v = 0
            if name == "entries":
                v = 5 + cycle + pid % 4
            elif j % 3 == 1:
                v = cycle * (j + cpu)
            vals.append(f"{v:08x}")
        rows.append(" ".join(vals))
    return "\n".join(rows) + "\n"


def cpu_stat(pid, cycle):
    return (f"usage_usec {10 ** 6 * (cycle + 1)}\nnr_periods {100 * cycle}\n"
            f"nr_throttled {7 * cycle}\nthrottled_usec {2500 * cycle}\n")


def main() -> None:
    for cycle in range(3):
        shutil.rmtree(OUT / f"cycle{cycle}", ignore_errors=True)
    for cycle in range(3):
        proc, cg = OUT / f"cycle{cycle}" / "proc", OUT / f"cycle{cycle}" / "cgroup"
        for pid, (inode, cgroup, comm, cycles, has6, hasct) in NS.items():
            if cycle not in cycles:
                continue
            for p in (pid, *EXTRA_PIDS.get(pid, ())):
                base = proc / str(p)
                (base / "ns").mkdir(parents=True)
                (base / "ns" / "net").symlink_to(f"net:[{inode}]")
                (base / "comm").write_text(comm + "\n")
                (base / "cgroup").write_text(cgroup)
            net = proc / str(pid) / "net"
            (net / "stat").mkdir(parents=True)
            (net / "snmp").write_text(pairs(BASE.joinpath("snmp").read_text(), pid, cycle))
            (net / "netstat").write_text(pairs(BASE.joinpath("netstat").read_text(), pid, cycle))
            if has6:
                (net / "snmp6").write_text(snmp6(BASE.joinpath("snmp6").read_text(), pid, cycle))
            if hasct:
                (net / "stat" / "nf_conntrack").write_text(conntrack(pid, cycle))
            (net / "dev").write_text(dev(pid, cycle))
            (net / "sockstat").write_text(sockstat(pid, cycle))
            for p in EXTRA_PIDS.get(pid, ()):
                os.symlink(f"../{pid}/net", proc / str(p) / "net")
        a = cg / ("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
                  f"{UID_A.replace('-', '_')}.slice")
        b = cg / f"cpu/kubepods/besteffort/pod{UID_B}"
        for d, pid in ((a, 101), (b, 102)):
            d.mkdir(parents=True)
            (d / "cpu.stat").write_text(cpu_stat(pid, cycle))


if __name__ == "__main__":
    ROOT = Path(sys.argv[1])
    BASE, OUT = ROOT / "tests/data/proc/1/net", ROOT / "tests/data/podnet"
    main()
