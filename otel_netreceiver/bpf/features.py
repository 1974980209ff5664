"""What the running kernel and this process allow, checked before any probe is loaded.

Each probe is reported loaded or unavailable with the precise reason (bcc not
importable, no BTF, tracefs not mounted and not mountable, a tracepoint missing,
no permission, no kernel build tree for bcc), and the rest of the agent runs
regardless (docs/background.md, "This kind of kernel").
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.bpf.tracefs import tracefs_root

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


@dataclass(frozen=True, slots=True)
class Environment:
    bcc_error: str  # "" when bcc imports
    btf_path: str | None
    tracefs: str | None
    permission_error: str
    headers_error: str


def effective_caps(proc_root: str = "/proc") -> int:
    for line in Path(proc_root, "self", "status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _permission(proc_root: str) -> str:
    caps = effective_caps(proc_root)
    has = (caps >> CAP_SYS_ADMIN & 1) or ((caps >> CAP_BPF & 1) and (caps >> CAP_PERFMON & 1))
    return "" if has else "needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load BPF programs"


def _mount_tracefs(configured: str = "") -> str | None:
    """Mount tracefs if it is not (the agent's image mounts the host's read-only).

    A configured path is used as it is, never mounted over: if it holds no tracefs, the
    probes are unavailable and say so.
    """
    if configured:
        return configured if Path(configured, "events").is_dir() else None
    root = tracefs_root()
    if root is not None:
        return root
    subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                   capture_output=True, check=False)
    return tracefs_root()


def _headers(release: str) -> str:
    build = Path("/lib/modules", release, "build")
    if (build / "include").is_dir():
        return ""
    return (f"bcc needs a kernel build tree at {build} (any version works for tracepoint "
            "probes: scripts/install-deps.sh links Debian's headers there)")


def inspect(btf_path: str, proc_root: str = "/proc", import_bcc: bool = True,
            tracefs: str = "") -> Environment:
    bcc_error = ""
    if import_bcc:
        try:
            import bcc  # noqa: F401  (Debian python3-bpfcc; PyPI's "bcc" is unrelated)
        except Exception as exc:
            bcc_error = f"bcc is not importable ({type(exc).__name__}: {exc}); install " \
                        "Debian's python3-bpfcc"
    else:
        bcc_error = "bcc disabled in configuration (collectors.ebpf.use_bcc: false)"
    return Environment(bcc_error, btf_path if Path(btf_path).is_file() else None,
                       _mount_tracefs(tracefs), _permission(proc_root),
                       _headers(os.uname().release))


def why_unavailable(spec: ProbeSpec, env: Environment) -> str:
    """'' when the probe can be loaded, else the first reason it cannot."""
    for reason in (env.bcc_error, env.permission_error, env.headers_error):
        if reason:
            return reason
    if env.tracefs is None:
        return "tracefs is not mounted and could not be mounted at /sys/kernel/tracing " \
               "(or collectors.ebpf.tracefs_path holds no tracefs)"
    if spec.needs_btf and env.btf_path is None:
        return "no BTF: struct offsets for namespace attribution cannot be known safely"
    for attach in spec.attach:
        if not Path(env.tracefs, "events", attach.category, attach.event).is_dir():
            return f"tracepoint {attach.category}:{attach.event} does not exist on this kernel"
    return ""
