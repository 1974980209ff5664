"""`probes --print-program NAME` prints what the agent compiles here (bcc tools' --ebpf)."""

from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from otel_netreceiver.bpf.probes import EVENT_PROBES, PROBES
from otel_netreceiver.cli import main
from otel_netreceiver.runtime.print_program import EVENTS, program_names

ENV_REASON = "needs root, tracefs and BTF to render from this kernel's formats"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(
    "/sys/kernel/btf/vmlinux"), reason=ENV_REASON)


def _print(name: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["probes", "--print-program", name])
    return code, out.getvalue(), err.getvalue()


def test_every_program_renders_with_this_kernels_offsets_or_says_why() -> None:
    for name in program_names():
        code, text, err = _print(name)
        if code == 1:  # a tracepoint this kernel lacks: named, never a traceback
            assert "cannot be rendered here" in err and "Traceback" not in err, (name, err)
            continue
        assert code == 0, (name, err)
        specs = ([EVENT_PROBES[name[len(EVENTS):]]] if name.startswith(EVENTS)
                 else [PROBES[member] for member in name.split("+")])
        for attach in (a for spec in specs for a in spec.attach):  # each handler is in the text
            assert f" {attach.function}(" in text, (name, attach.function)
        if "+" in name:  # one entry per tracepoint (or socket hook) calls every member's
            assert re.search(r"^int onr_\w+\((void \*args|struct __sk_buff \*skb)\) \{",
                             text, re.M), name
        assert "#define TIMING_SAMPLE" in text, name  # rendered defines, not the template


def test_the_printed_program_is_what_the_kernel_accepts() -> None:
    pytest.importorskip("bcc", reason="bcc (python3-bpfcc) is not installed")
    from bcc import BPF

    code, text, err = _print("packetloss")
    assert code == 0, err
    bpf = BPF(text=text.encode())  # compiles and passes the verifier as printed
    try:
        bpf.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=b"on_kfree_skb")
    finally:
        bpf.cleanup()


def test_an_unknown_name_lists_the_known_ones() -> None:
    code, _, err = _print("nosuchprobe")
    assert code == 2 and "no probe 'nosuchprobe'" in err and "events/packetloss" in err
