"""Where a DNS packet's nanoseconds go in the dns probe's counting program (counting.c).

Each variant is this checkout's counting.c cut down at one point (text patched before
compiling, each patch's anchor checked), loaded by the agent's own loader and attached
alone (cgroup_skb egress and ingress on the cgroup v2 root), in rounds alternating over the
variants; per variant and program the kernel's run_time_ns / run_cnt
(kernel.bpf_stats_enabled=1, restored afterwards; it includes the two clock reads the
statistics add) over a DNS ping-pong on 127.0.0.1:53 (bench_dns_hook.py's: egress is the
client's query and the server's answer, ingress the server's query and the client's answer)
and the same with NXDOMAIN answers under changing names (bench_dns_events.py's: an ndots
run started per answer). Medians of the rounds. Every other local packet on the machine
runs the programs too (a few, at ~40 ns: they pull an average down slightly).

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_breakdown.py [--rounds 3] \
        [--rev main --rev HEAD] [--only 'whole program|...']
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import bpf_stats
from bench.bench_dns_events import _counting, nxdomain_pingpong
from bench.bench_dns_hook import dns_pingpong

COUNTING = Path(__file__).parent.parent / "otel_netreceiver/bpf/probes/dns/counting.c"
OPS = 20_000
HEADER = "u8 response = h[2] >> 7, server = egress == response;\n"
QUESTION = "int q = question_class(skb, off + 12, skb->len - off - 12, &qi);\n"
UDP_CALL = "dns_message(skb, l4 + 8, egress, T_UDP, sport, dport, remote, local);"
CLIENT_QUERY = "client_query(netns, port, id, transport, rclass, q);"
CLIENT_RESPONSE = "client_response(netns, port, id, transport, rclass, h[2], h[3], 0);"
LEFT = "u32 left = skb->len - off - 12;\n"
# the floor of any per-pod DNS counting: every DNS packet counted once, per pod (netns
# cookie), kind, role, resolver class and rcode, from its header alone (bench_dns_tools.py)
PER_POD_COUNT = ("count(netns, response ? K_RESPONSE : K_QUERY, role, rclass, "
                 "response ? h[3] & 0xF : 0, transport, 1);\nif (skb->len) return;\n")
Patch = tuple[str, str]
# cumulative stages: each adds a part of the DNS path to the one before
VARIANTS: dict[str, tuple[Patch, ...]] = {
    "ports filter only": ((UDP_CALL, "(void)l4;"),),
    "+ header, netns cookie": ((HEADER, HEADER + "if (skb->len) return;\n"),),
    "+ header, one per-pod count": ((LEFT, LEFT + PER_POD_COUNT),),
    "+ question walk": ((QUESTION, QUESTION.replace("&qi", "NULL") + "if (skb->len) return;\n"),),
    "+ name hashes": ((QUESTION, QUESTION + "if (skb->len) return;\n"),),
    "+ counters only": ((CLIENT_QUERY, "count(netns, K_QUERY, ROLE_CLIENT, rclass, q, transport,"
                         " 1);"),
                        (CLIENT_RESPONSE, "count(netns, K_RESPONSE, ROLE_CLIENT, rclass, h[3] & "
                         "0xF, transport, 1); if (skb->len) return;")),
    "+ pending/expired, no name checks": (("if (q >= 0) {", "if (q >= 0 && !skb->len) {"),),
    "whole program": (),
    # one part taken out of the whole program each (where the revision has it)
    "whole, query: no pending/expired": ((CLIENT_QUERY, "count(netns, K_QUERY, ROLE_CLIENT, "
                                          "rclass, q, transport, 1);"),),
    "whole, query: no pending insert": (("if (pending.insert(&key, &v) == 0)\n",
                                         "if (v.sent != 1 || pending.insert(&key, &v) == 0)\n"),),
    "whole, query: no clock read": (("u64 now = bpf_ktime_get_ns();\n    count(netns, K_QUERY",
                                     "u64 now = 5;\n    count(netns, K_QUERY"),),
    "whole, query: no timeouts lookup": (("u64 *t = timeouts.lookup(&netns);\n    struct "
                                          "pend_val v", "u64 *t = NULL;\n    struct pend_val v"),),
    **{f"whole, pending 2 x {n} entries": (("struct pend_val, PENDING_MAX * 2);",
                                            f"struct pend_val, {2 * n});"),)
       for n in (512, 4096)},
    "whole, ndots_runs BPF_HASH": (('BPF_TABLE("lru_hash", struct run_key, struct run_val, '
                                    'ndots_runs, 2048);', "BPF_HASH(ndots_runs, struct run_key, "
                                    "struct run_val, 2048);"),),
    "whole, answer: no latency": (("observe(netns, rclass, delta);", ""),),
    "whole, query+answer: no count()": (("count(netns, K_QUERY, ROLE_CLIENT, rclass, qclass, "
                                         "transport, 1);", ""),
                                        ("count(netns, K_RESPONSE, ROLE_CLIENT, rclass, flags3 "
                                         "& 0xF, transport, 1);", "")),
    "whole, pending/expired BPF_HASH": tuple(
        (f'BPF_TABLE("lru_hash", struct pend_key, struct pend_val, {m}, PENDING_MAX);',
         f"BPF_HASH({m}, struct pend_key, struct pend_val, PENDING_MAX);")
        for m in ("pending", "expired")),
}


def source_at(rev: str) -> str:
    """counting.c as at a git revision ("" for this checkout's file)."""
    if rev in ("", "."):
        return COUNTING.read_text()
    return subprocess.run(["git", "show", f"{rev}:otel_netreceiver/bpf/probes/dns/counting.c"],
                          check=True, capture_output=True, text=True,
                          cwd=COUNTING.parent).stdout


def applies(source: str, patches: tuple[Patch, ...]) -> bool:
    return all(source.count(old) == 1 for old, _ in patches)


def patched(source: str, patches: tuple[Patch, ...]) -> Callable[[str, Any], str]:
    """The text hook: the rendered file with ``source``'s body (a revision's) and patches."""
    def text(rendered: str, formats: Any) -> str:
        from otel_netreceiver.bpf.probes import PROBES
        from otel_netreceiver.bpf.programs import render_struct_of

        if source != COUNTING.read_text():  # the hook gets the file with its struct rendered
            rendered = source.replace("KFREE_ARGS_STRUCT",
                                      render_struct_of(PROBES["dns"].structs[0], formats))
        for old, new in patches:
            rendered = rendered.replace(old, new)
        return rendered
    return text


def run_time(probe: Any) -> dict[str, tuple[int, int]]:
    out = {}
    for side in ("egress", "ingress"):
        fd = probe.funcs[f"dns_{side}".encode()].fd
        text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        out[side] = (int(info["run_time_ns"]), int(info["run_cnt"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="variant names separated by |")
    parser.add_argument("--rev", action="append", help="counting.c at these git revisions "
                        "(repeatable; '.' or none: this checkout's); variants whose anchors are "
                        "not in a revision's text are left out")
    args = parser.parse_args()
    from otel_netreceiver.bpf.probes import PROBES

    spec = PROBES["dns"]
    probes = {}
    for rev in args.rev or [""]:
        source = source_at(rev)
        for name, patches in VARIANTS.items():
            if (args.only and name not in args.only.split("|")) or not applies(source, patches):
                continue
            label = f"{rev}: {name}" if rev not in ("", ".") else name
            probes[label] = _counting(replace(spec, text=patched(source, patches)))
            probes[label].socket_hooks(False)
    workloads = (("dns", dns_pingpong), ("nxdomain", nxdomain_pingpong))
    results: dict[tuple[str, str, str], list[float]] = {}
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    with bpf_stats():
        for _ in range(args.rounds):
            for name, probe in probes.items():
                for workload, run in workloads:
                    probe.socket_hooks(True)
                    before = run_time(probe)
                    run(OPS)
                    after = run_time(probe)
                    probe.socket_hooks(False)
                    for side in after:
                        ns = after[side][0] - before[side][0]
                        runs = max(1, after[side][1] - before[side][1])
                        results.setdefault((name, workload, side), []).append(ns / runs)
        for probe in probes.values():
            probe.cleanup()
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    print(f"{'variant (cumulative)':<44} {'dns egr':>8} {'dns ingr':>8} {'nx egr':>8} "
          f"{'nx ingr':>8}  ns/run, median of {args.rounds}")
    for name in probes:
        cells = [statistics.median(results[(name, w, s)])
                 for w, _ in workloads for s in ("egress", "ingress")]
        print(f"{name:<44} " + " ".join(f"{c:>8.1f}" for c in cells))


if __name__ == "__main__":
    main()
