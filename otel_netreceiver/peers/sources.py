"""The live zone sources of this node and the peer table built from them.

Nothing here does I/O when made: the Node and Service watches and DescribeSubnets start with
``start()`` (the probe that classes traffic by peer) or once with ``check()``
(``otel-netreceiver probes``, which then says which sources answered and why the
others did not). Each source is optional; without any, the classes that need no
zone still work (peers/zones.py).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.cloud.subnets import SubnetCache, ec2_client
from otel_netreceiver.config.schema import PeersConfig
from otel_netreceiver.k8s.nodes import NodeInfo, NodeWatcher
from otel_netreceiver.k8s.services import ServiceInfo, ServiceWatcher
from otel_netreceiver.model import ProbeStatus
from otel_netreceiver.peers.classes import PeerTable
from otel_netreceiver.peers.zones import ZoneSources, build, describe

NAME = "peer-zones"


class PodAddresses(Protocol):
    def addresses(self) -> tuple[str, ...]: ...


class PeerZones:
    def __init__(self, cfg: PeersConfig, metadata: InstanceMetadata, node_name: str,
                 pods: PodAddresses, k8s_factory: Callable[[], Any] | None,
                 ec2_factory: Callable[[], Any] | None = None) -> None:
        self._cfg, self._meta, self._node, self._pods = cfg, metadata, node_name, pods
        self._static: dict[str, str] = {}
        if not metadata.availability_zone:
            self._static["IMDS"] = "no instance metadata: see imds"
        self.subnets = self._subnet_cache(ec2_factory)
        self._k8s_factory = k8s_factory
        self.nodes: NodeWatcher | None = None
        if cfg.node_watch is False:
            self._static["Node watch"] = "off in configuration (peers.node_watch: false)"
        elif k8s_factory is None:
            self._static["Node watch"] = "no Kubernetes API: see kubernetes"
        else:
            self.nodes = NodeWatcher(k8s_factory)
        self.services: ServiceWatcher | None = None
        if cfg.service_watch is False:
            self._static["Service watch"] = ("off in configuration (peers.service_watch: "
                                             "false)")
        elif k8s_factory is not None:  # no API: the Node watch line already says so
            self.services = ServiceWatcher(k8s_factory)
        self._lock = threading.Lock()
        self._started = self._checked = False
        self._last: tuple[ZoneSources, PeerTable] | None = None

    def _subnet_cache(self, ec2_factory: Callable[[], Any] | None) -> SubnetCache | None:
        cfg, meta = self._cfg, self._meta
        if cfg.describe_subnets is False:
            self._static["DescribeSubnets"] = "off in configuration (peers.describe_subnets: false)"
        elif not meta.vpc_id:
            self._static["DescribeSubnets"] = "no VPC id from IMDS"
        elif ec2_factory is None and importlib.util.find_spec("botocore") is None:
            self._static["DescribeSubnets"] = "botocore is not installed (the amp extra)"
        else:
            factory = ec2_factory or (lambda: ec2_client(meta.region, cfg.ec2_endpoint))
            return SubnetCache(factory, meta.vpc_id, cfg.refresh)
        return None

    # --- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._started

    def start(self) -> None:
        if self._started:
            return
        if self._checked:  # check() ran the watchers to their end: a thread starts only once
            if self.nodes is not None:
                self.nodes = NodeWatcher(self._k8s_factory)
            if self.services is not None:
                self.services = ServiceWatcher(self._k8s_factory)
        for watcher in self._watchers():
            watcher.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            for watcher in self._watchers():
                watcher.stop()
        self._started = False

    def _watchers(self) -> list[NodeWatcher | ServiceWatcher]:
        return [w for w in (self.nodes, self.services) if w is not None]

    def check(self, timeout: float = 5.0) -> None:
        """Ask every source once (``probes``): one DescribeSubnets, the first Node and
        Service lists."""
        self._checked = True
        if self.subnets is not None:
            self.subnets.refresh_if_due()
        if self._started:
            return
        watchers = self._watchers()
        for watcher in watchers:
            watcher.start()
        deadline = time.monotonic() + timeout
        while (any(not w.stats.lists and not w.stats.errors for w in watchers)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        for watcher in watchers:
            watcher.stop()

    # --- what is known -------------------------------------------------------------
    def sources(self) -> ZoneSources:
        """Everything known now; refreshes the subnet list when due (collector thread)."""
        if self.subnets is not None and self._started:
            self.subnets.refresh_if_due()
        return ZoneSources(
            node_name=self._node, imds_zone=self._meta.availability_zone,
            imds_subnets=self._meta.subnet_cidrs,
            subnets=self.subnets.subnets() if self.subnets is not None else (),
            nodes=self.nodes.nodes() if self.nodes is not None else (),
            pod_ips=self._pods.addresses(),
            configured=tuple(sorted(self._cfg.subnets.items())),
            other_ranges=tuple(self._cfg.other_ranges),
            services=self.services.services() if self.services is not None else (),
            service_ranges=tuple(self._cfg.service_ranges))

    def table(self) -> PeerTable:
        """The peer table of now, rebuilt only when a source changed."""
        sources = self.sources()
        with self._lock:
            if self._last is None or self._last[0] != sources:
                self._last = (sources, build(sources))
            return self._last[1]

    def node_infos(self) -> tuple[NodeInfo, ...]:
        """The Node watch's nodes while running (the top-peer records name peers by them)."""
        return self.nodes.nodes() if self.nodes is not None and self._started else ()

    def service_infos(self) -> tuple[ServiceInfo, ...]:
        """The Service watch's Services while running (top-peer records name ClusterIPs)."""
        return (self.services.services() if self.services is not None and self._started
                else ())

    def missing(self) -> dict[str, str]:
        out = dict(self._static)
        if self.subnets is not None and self.subnets.stats.last_error:
            out["DescribeSubnets"] = self.subnets.stats.last_error
        if self.nodes is not None and self.nodes.stats.last_error:
            out["Node watch"] = self.nodes.stats.last_error
        if self.services is not None and self.services.stats.last_error:
            out["Service watch"] = self.services.stats.last_error
        return out

    def status(self) -> ProbeStatus:
        if not (self._started or self._checked):
            return ProbeStatus(NAME, False, "not asked: no enabled probe classes traffic by "
                               "peer" + (f"; unavailable here: {_join(self._static)}"
                                         if self._static else ""))
        ok, line = describe(self.sources(), self.missing())
        return ProbeStatus(NAME, ok, line)


def _join(missing: dict[str, str]) -> str:
    return "; ".join(f"{k} ({v})" for k, v in missing.items())
