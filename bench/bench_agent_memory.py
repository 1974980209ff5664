"""Resident memory of the whole agent process: default config, eBPF and events, 200 pods.

The real command (``python -m otel_netreceiver run``) runs with the default
configuration plus an OTLP endpoint on a loopback sink started here (so the
events collector loads its programs too), while ``--pods`` processes each hold
a fresh network namespace. Every ``--every`` seconds the agent's
/proc/PID/smaps_rollup is sampled (RSS, PSS, anonymous, file-backed) and, at
the checkpoints and the end, /proc/PID/smaps is grouped by what is mapped:
anonymous memory and the heap (Python objects, malloc), the LLVM/clang
libraries bcc compiles with, libbcc, the Python interpreter, everything else.

Page-out (bpf/trim.py) cannot reclaim a page another process maps too: on a
machine where other processes run bcc, the LLVM pages they share stay resident
here. The "llvm shared" column counts them and "sharers" the other processes
mapping libLLVM at that moment; the summary also gives RSS less those pages.

The baseline, measured in the same process afterwards, is the same agent with
collectors.ebpf and collectors.events disabled (``--baseline-seconds``, 0: skip):
what the BPF side costs is the difference.

    flock /tmp/onr-bench.lock python bench/bench_agent_memory.py [--seconds 300] [--pods 200]
        [--costs-only: the kallsyms table, bcc's import and objects, one release, in-process]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "sdk")]

from tests.support.otlp_sink import OtlpHttpSink  # noqa: E402
from tests.support.pods import reap, spawn_bare_namespaces  # noqa: E402

GROUPS = ("anon+heap", "llvm/clang", "libbcc", "python", "other")
COLUMNS = (*GROUPS, "llvm shared")
CHECKPOINTS = (30, 60, 90, 120, 180, 240, 300, 600, 900)


def group_of(path: str) -> str:
    """Which bucket a mapping of /proc/PID/smaps belongs to, by its path."""
    name = os.path.basename(path)
    if not path or path.startswith("[heap]") or path.startswith("[anon"):
        return "anon+heap"
    if "LLVM" in name or "clang" in name:
        return "llvm/clang"
    if "libbcc" in name:
        return "libbcc"
    if "python" in name:
        return "python"
    return "other"


def parse_smaps(text: str) -> dict[str, int]:
    """Group → RSS kB over every mapping of a /proc/PID/smaps text, plus "llvm shared":
    the compiler pages other processes map too, which page-out cannot reclaim."""
    totals: defaultdict[str, int] = defaultdict(int)
    current = "other"
    for line in text.splitlines():
        first = line.split(None, 1)[0] if line else ""
        if "-" in first and not first.endswith(":"):  # a mapping header: range perms ... path
            fields = line.split(None, 5)
            current = group_of(fields[5].strip() if len(fields) > 5 else "")
        elif first == "Rss:":
            totals[current] += int(line.split()[1])
        elif first in ("Shared_Clean:", "Shared_Dirty:") and current == "llvm/clang":
            totals["llvm shared"] += int(line.split()[1])
    return {g: totals.get(g, 0) for g in COLUMNS}


def compiler_sharers(pid: int) -> int:
    """Other processes that map libLLVM now (their pages stay resident in ours too)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(pid):
            try:
                count += "libLLVM" in (entry / "maps").read_text()
            except OSError:
                continue
    return count


def parse_rollup(text: str) -> dict[str, int]:
    """RSS, PSS, anonymous and file-backed kB from /proc/PID/smaps_rollup."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            values[parts[0][:-1]] = int(parts[1])
    rss, anon = values.get("Rss", 0), values.get("Anonymous", 0)
    return {"rss": rss, "pss": values.get("Pss", 0), "anon": anon, "file": rss - anon}


def _mb(kb: int) -> str:
    return f"{kb / 1024:7.1f}"


def _config(directory: str, endpoint: str, bpf: bool) -> str:
    path = Path(directory, "agent-bpf.yaml" if bpf else "agent-nobpf.yaml")
    off = "" if bpf else "collectors:\n  ebpf:\n    enabled: false\n  events:\n    enabled: false\n"
    path.write_text(f"{off}exporters:\n  otlp:\n    endpoint: {endpoint}\n")
    return str(path)


def _sample(pid: int, now: float, full: bool) -> dict[str, int]:
    """One rollup sample; with ``full``, also the smaps breakdown, printed as a row."""
    rollup = parse_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
    if full:
        groups = parse_smaps(Path(f"/proc/{pid}/smaps").read_text())
        print(f"{now:5.0f} {_mb(rollup['rss'])} {_mb(rollup['pss'])} {_mb(rollup['anon'])} "
              f"{_mb(rollup['file'])}   " + " ".join(f"{_mb(groups[g]):>10}" for g in COLUMNS)
              + f" {compiler_sharers(pid):>8}", flush=True)
        rollup["llvm_shared"] = groups["llvm shared"]
    return rollup


def _watch(proc: subprocess.Popen, seconds: float, every: float) -> dict[str, int]:
    """Sample until ``seconds`` have passed; rows at the checkpoints and at the end."""
    started, last = time.monotonic(), {}
    marks = [c for c in CHECKPOINTS if c < seconds - every / 2]
    while (elapsed := time.monotonic() - started) < seconds:
        time.sleep(min(every, seconds - elapsed))
        if proc.poll() is not None:
            raise RuntimeError(f"the agent exited with {proc.returncode}")
        now = time.monotonic() - started
        due = bool(marks) and now >= marks[0] - every / 2
        while marks and now >= marks[0] - every / 2:
            marks.pop(0)
        last = _sample(proc.pid, now, due or now >= seconds - 0.5)
    return last


def run_agent(config: str, seconds: float, every: float, label: str) -> dict[str, int]:
    """Start the agent, sample it for ``seconds``, print the timeline; the last rollup."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk'}",
           "AWS_EC2_METADATA_DISABLED": "true"}
    print(f"\n{label}")
    print(f"{'t/s':>5} {'RSS MB':>7} {'PSS':>7} {'anon':>7} {'file':>7}   "
          + " ".join(f"{g:>10}" for g in COLUMNS) + " sharers")
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c", config],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        try:
            last = _watch(proc, seconds, every)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            log.seek(0)
            text = log.read().decode(errors="replace")
        if proc.returncode not in (0, -15):
            print(text[-3000:])
    for line in text.splitlines():
        if "started on" in line:  # what loaded: the eBPF and events parts of the status line
            parts = [p for p in line.split("); ") if p.startswith(("ebpf:", "events:"))]
            print("\n".join("  " + p[:400] for p in parts))
    return last


def _as_lists(proc_root: str) -> tuple[list[int], list[str]]:
    """The former representation, for comparison: one int and one str per text symbol."""
    pairs = []
    for line in Path(proc_root, "kallsyms").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] in ("t", "T", "w", "W") and int(fields[0], 16):
            pairs.append((int(fields[0], 16), fields[2]))
    pairs.sort()
    return [a for a, _ in pairs], [n for _, n in pairs]


def kallsyms_figures(proc_root: str = "/proc") -> None:
    """Live and peak bytes (tracemalloc) of the compact table against lists of int and str."""
    import tracemalloc

    from otel_netreceiver.bpf.kallsyms import Kallsyms

    for label, parse in (("lists of int and str", _as_lists), ("compact table", Kallsyms.load)):
        tracemalloc.start()
        table = parse(proc_root)
        live, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        count = len(table[0]) if isinstance(table, tuple) else len(table)
        print(f"kallsyms as {label:21}: {count} symbols, live {live / 2**20:5.1f} MB, "
              f"peak while parsing {peak / 2**20:5.1f} MB")
        del table


def _anon_mb() -> float:
    return parse_rollup(Path("/proc/self/smaps_rollup").read_text())["anon"] / 1024


def bcc_costs(objects: int = 4, releases: int = 20) -> None:
    """In this process: anonymous MB of importing bcc and of each loaded BPF object (after
    malloc_trim), and the CPU time of one release (bpf/trim.py) once the pages are out."""
    from otel_netreceiver.bpf.loader import BpfLoader
    from otel_netreceiver.bpf.probes import PROBES
    from otel_netreceiver.bpf.programs import render
    from otel_netreceiver.bpf.trim import malloc_trim
    from otel_netreceiver.config.schema import EbpfConfig

    malloc_trim()
    start = _anon_mb()
    import bcc  # noqa: F401

    malloc_trim()
    imported = _anon_mb()
    loader, loaded, marks = BpfLoader(EbpfConfig(), "/proc"), [], []
    for _ in range(objects):
        loaded += loader.load_all([PROBES["net_softirq"]], lambda spec, formats, btf: render(
            spec, formats, {"TIMING_SAMPLE": EbpfConfig().timing_sample})).values()
        malloc_trim()
        marks.append(_anon_mb())
    started = time.thread_time()
    for _ in range(releases):
        loader.release()
    cost = (time.thread_time() - started) / releases
    for bpf in loaded:
        bpf.cleanup()
    if len(loaded) < objects:
        raise SystemExit(f"net_softirq did not load: {loader.statuses}")
    print(f"import bcc: +{imported - start:.1f} MB anon; first BPF object (net_softirq): "
          f"+{marks[0] - imported:.1f} MB; each further one: "
          f"+{(marks[-1] - marks[0]) / (objects - 1):.1f} MB; "
          f"one release: {cost * 1e3:.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--every", type=float, default=5.0, help="sampling period (s)")
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument("--costs-only", action="store_true",
                        help="only the in-process figures: kallsyms, bcc import, release")
    args = parser.parse_args()
    kallsyms_figures()
    bcc_costs()
    if args.costs_only:
        return
    sink = OtlpHttpSink()
    pods = spawn_bare_namespaces(args.pods)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            full = run_agent(_config(tmp, sink.endpoint, True), args.seconds, args.every,
                             f"agent, default config + events, {args.pods} pods")
            base = {}
            if args.baseline_seconds > 0:
                base = run_agent(_config(tmp, sink.endpoint, False), args.baseline_seconds,
                                 args.every, "baseline: ebpf and events disabled")
    finally:
        reap(pods)
        sink.close()
    print(f"\nsteady RSS {full['rss'] / 1024:.1f} MB (PSS {full['pss'] / 1024:.1f}, anon "
          f"{full['anon'] / 1024:.1f}, file {full['file'] / 1024:.1f}); metrics requests "
          f"received {len(sink.requests)}, log requests {len(sink.log_requests)}")
    shared = full.get("llvm_shared", 0)
    print(f"compiler pages other processes also map: {shared / 1024:.1f} MB; RSS less those "
          f"(what page-out leaves when no other bcc process runs): "
          f"{(full['rss'] - shared) / 1024:.1f} MB")
    if base:
        print(f"baseline without BPF {base['rss'] / 1024:.1f} MB; with BPF x"
              f"{full['rss'] / max(base['rss'], 1):.2f}, +{(full['rss'] - base['rss']) / 1024:.1f}"
              " MB")


if __name__ == "__main__":
    main()
