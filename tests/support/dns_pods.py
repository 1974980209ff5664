"""Pods for the DNS tests: a client whose resolv.conf the test writes, a resolver pod, and
the repository's test DNS server running in it (tests/support/dns_server.py).

One place for what test_ebpf_dns, test_ebpf_dns_events and test_nodeapi_dns each set up
the same way: the resolv.conf has to exist under /etc/netns/<name>/ before the client's
first process starts, because `ip netns exec` bind-mounts it over /etc/resolv.conf.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig, EventsConfig
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.source import EventSource, settings_of
from otel_netreceiver.k8s.directory import NoPods
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods

SUPPORT = Path(__file__).resolve().parent


def netns_name(index: int) -> str:
    return f"onrpod{os.getpid() % 1000}x{index}"  # as tests/support/pods.py names it


def resolver_address(index: int) -> str:
    return f"10.251.{index}.2"  # the pod address tests/support/pods.py gives pod ``index``


@contextlib.contextmanager
def client_and_resolver(client: int, server: int, options: str, search: str = "",
                        others: tuple[int, ...] = ()) -> Iterator[list[Pod]]:
    """[client, resolver, *others], linked; the client's resolv.conf names the resolver
    with ``options`` (e.g. "timeout:1") and ``search`` when given."""
    conf = Path("/etc/netns") / netns_name(client)
    conf.mkdir(parents=True, exist_ok=True)
    lines = [f"nameserver {resolver_address(server)}"] + ([f"search {search}"] if search else [])
    conf.joinpath("resolv.conf").write_text("\n".join([*lines, f"options {options}", ""]))
    made: list[Pod] = []
    try:
        made = [create_pod(client), create_pod(server, "systemd"),
                *(create_pod(i) for i in others)]
        assert made[1].pod_ip == resolver_address(server)
        link_pods(made)
        yield made
    finally:
        for pod in made:
            destroy_pod(pod)
        shutil.rmtree(conf, ignore_errors=True)


def start_dns_server(pod: Pod, ready_within: float = 20.0) -> subprocess.Popen:
    """tests/support/dns_server.py on the pod's address, once it says it is ready."""
    proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable,
                             str(SUPPORT / "dns_server.py"), pod.pod_ip],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + ready_within
    assert proc.stdout is not None
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([proc.stdout], [], [], left)[0]:
            break
        line = proc.stdout.readline()
        if "ready" in line:
            return proc
        if not line:
            break
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise AssertionError(f"dns_server.py in {pod.netns} never said ready: {err}")


DNS_TYPES = ["DNS_TIMEOUT", "DNS_LATE_ANSWER", "DNS_SERVFAIL", "DNS_NXDOMAIN_BURST"]


@contextlib.contextmanager
def dns_counting_and_events(
        resolver: str, hosted: bool = False,
        probes: tuple[str, ...] = ("dns",),
) -> Iterator[tuple[EbpfCollector, EventSource, list[Event]]]:
    """The dns probe's counting program and its DNS failure records, loaded as the agent
    loads them, with ``resolver`` as cluster DNS: (collector, event source, records);
    ``hosted``: the records' handlers compiled into the counting object, as the agent does
    when both are on (events/hosting.py), else two objects; ``probes``: dns with peers
    makes the counting object the socket-hook composite (bpf/compose_hooks.py).

    The client's resolv.conf timeout reaches the kernel at the first collection (the event
    sweep writes it too), so the first queries are timed with it."""
    ebpf = EbpfConfig(probes=list(probes), dns=DnsProbeConfig(cluster_dns=[resolver]))
    config = EventsConfig(types=DNS_TYPES)
    hosting = EventHosting(settings_of(config), ebpf.timing_sample) if hosted else None
    collector = EbpfCollector(ebpf, "/proc", NoPods(), hosting=hosting)
    assert collector.statuses() == dict.fromkeys(probes, ""), collector.statuses()
    assert list(collector.objects()) == ["+".join(probes)]
    events: list[Event] = []
    source = EventSource(config, ebpf, "/proc", NoPods(), events.append, hosting=hosting)
    try:
        assert source.statuses == {"dns": ""}, source.statuses
        assert (hosting is not None and hosting.owns(source._loaded["dns"])) == hosted
        source.start()
        collector.collect()
        time.sleep(1.2)
        yield collector, source, events
    finally:
        source.close()
        collector.close()
