"""A pod's resolver timeout, from the resolv.conf its processes see."""

from __future__ import annotations

import os
import subprocess

import pytest

from otel_netreceiver.dns.resolvconf import (
    DEFAULT_TIMEOUT_S,
    ResolverOptions,
    parse_resolv_conf,
    read_resolv_conf,
)

KUBELET = """search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal
nameserver 10.100.0.10
options ndots:5
"""


def test_a_kubelet_written_file_keeps_the_resolver_defaults() -> None:
    options = parse_resolv_conf(KUBELET)
    assert options == ResolverOptions(("10.100.0.10",), ("shop.svc.cluster.local",
                                      "svc.cluster.local", "cluster.local", "ec2.internal"),
                                      5, DEFAULT_TIMEOUT_S, 2)
    assert options.gives_up_after_s == 10.0


def test_options_are_clamped_and_the_last_line_wins_like_glibc() -> None:
    text = ("nameserver 169.254.20.10\nnameserver 10.100.0.10 # comment\n"
            "options timeout:2 attempts:9\noptions timeout:99 rotate\n; a comment\n")
    options = parse_resolv_conf(text)
    assert options.timeout_s == 30.0 and options.attempts == 5  # RES_MAXRETRANS, RES_MAXRETRY
    assert options.nameservers == ("169.254.20.10", "10.100.0.10")


def test_unreadable_values_and_lines_are_ignored() -> None:
    options = parse_resolv_conf("options timeout:x ndots:\nnameserver\ngarbage line\n")
    assert options == ResolverOptions()


def test_read_through_a_process_root(tmp_path) -> None:
    proc = tmp_path / "proc"
    etc = proc / "4242" / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "resolv.conf").write_text("nameserver 10.0.0.2\noptions timeout:1 attempts:3\n")
    options = read_resolv_conf(str(proc), 4242)
    assert options is not None and options.gives_up_after_s == 3.0
    assert read_resolv_conf(str(proc), 999) is None  # a vanished pod: quietly nothing


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a mount namespace")
def test_a_process_in_its_own_mount_namespace_sees_its_own_file(tmp_path) -> None:
    """The node reads the pod's file, not its own: /proc/<pid>/root follows mounts."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.9.9.9\noptions timeout:3\n")
    child = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount --bind {conf} /etc/resolv.conf && echo ready && exec sleep 30"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        options = read_resolv_conf("/proc", child.pid)
        # unshare execs sh which execs sleep: the same pid throughout
        assert options is not None and options.nameservers == ("10.9.9.9",), options
        assert options.timeout_s == 3.0
        mine = read_resolv_conf("/proc", os.getpid())
        assert mine is not None and mine.nameservers != ("10.9.9.9",)
    finally:
        child.kill()
        child.wait()
