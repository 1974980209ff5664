"""Kubernetes Services as peers: ClusterIPs and Service CIDRs are class service, the Service
watch's events keep the ClusterIPs current, top-peer records name the Service."""

from __future__ import annotations

import ipaddress

import pytest

from otel_netreceiver.config.loader import load_text
from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.k8s.services import ServiceInfo, ServiceWatcher, service_info
from otel_netreceiver.peers.classes import PeerClass, build_table, classify
from otel_netreceiver.peers.records import PeerNames
from otel_netreceiver.peers.zones import ZoneSources, build, describe

ip = ipaddress.ip_address
ME = NodeInfo("me", "us-west-2b", ("10.158.112.84",), ())
DNS = ServiceInfo("kube-system", "kube-dns", ("10.100.0.10", "fd00:100::a"))
API = ServiceInfo("shop", "api", ("10.100.7.7",))


def service(name: str, namespace: str = "shop", ips: tuple[str, ...] = ("10.100.7.7",),
            **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ips[0] if ips else "None",
                     "clusterIPs": list(ips) or ["None"], **spec}}


def test_cluster_ips_and_service_ranges_are_class_service() -> None:
    sources = ZoneSources("me", "us-west-2b", ("10.158.112.0/20",), (), (ME,),
                          services=(DNS, API), service_ranges=("172.20.0.0/16",))
    table = build(sources)
    for address, expected in [
        ("10.100.0.10", PeerClass.SERVICE),     # a ClusterIP: host route in 10/8
        ("fd00:100::a", PeerClass.SERVICE),     # its IPv6 ClusterIP, inside fc00::/7
        ("10.100.0.11", PeerClass.OTHER_VPC),   # not a ClusterIP, no range: private
        ("172.20.3.4", PeerClass.SERVICE),      # inside the configured Service CIDR
        ("172.21.0.1", PeerClass.OTHER_VPC),
        ("10.158.120.1", PeerClass.SAME_ZONE),
    ]:
        assert classify(table, ip(address)) == (expected, ""
                                                if expected != PeerClass.SAME_ZONE
                                                else "us-west-2b"), address


def test_longest_prefix_still_wins_over_a_service_range() -> None:
    # a same-node /32 inside the configured Service range keeps its own class
    table = build_table("a", {"10.100.5.0/24": "b"}, node_addresses=("10.100.0.5",),
                        service_ranges=("10.100.0.0/16",))
    assert classify(table, ip("10.100.0.5")) == (PeerClass.SAME_NODE, "a")
    assert classify(table, ip("10.100.5.9")) == (PeerClass.OTHER_ZONE, "b")
    assert classify(table, ip("10.100.9.9")) == (PeerClass.SERVICE, "")


def test_bad_service_range_names_the_key() -> None:
    with pytest.raises(ValueError, match="service_ranges"):
        build_table("", {}, service_ranges=("10.100.0.0/33",))
    with pytest.raises(ValueError, match="service_ranges"):
        load_text("peers:\n  service_ranges: [nonsense]\n", "a.yaml")


def test_config_keys_default_to_watch_when_the_api_is_configured() -> None:
    cfg = load_text("peers:\n  service_ranges: [172.20.0.0/16]\n", "a.yaml").config.peers
    assert cfg.service_watch is None and cfg.service_ranges == ["172.20.0.0/16"]


def test_service_info_keeps_cluster_ips_and_drops_headless() -> None:
    assert service_info(service("api")) == API
    dual = service("kube-dns", "kube-system", ("10.100.0.10", "fd00:100:0:0::a"))
    assert service_info(dual) == DNS  # IPv6 normalised
    assert service_info(service("db", ips=())).cluster_ips == ()  # headless: None
    old = {"metadata": {"name": "x", "namespace": "n"}, "spec": {"clusterIP": "10.1.1.1"}}
    assert service_info(old) == ServiceInfo("n", "x", ("10.1.1.1",))
    assert service_info({"metadata": {}}) is None


def test_watch_events_add_change_and_delete() -> None:
    watcher = ServiceWatcher(lambda: None)
    watcher._replace([service("api"), service("db", ips=()),
                      service("kube-dns", "kube-system", ("10.100.0.10", "fd00:100::a"))])
    assert watcher.services() == (DNS, API)  # headless db left out
    generation = watcher.generation
    watcher._apply("MODIFIED", service("api"))  # nothing kept changed
    assert watcher.generation == generation
    watcher._apply("MODIFIED", service("api", ips=("10.100.8.8",)))  # ClusterIP changed
    assert watcher.services()[1] == ServiceInfo("shop", "api", ("10.100.8.8",))
    assert watcher.generation == generation + 1
    watcher._apply("MODIFIED", service("api", ips=()))  # became headless: gone
    watcher._apply("DELETED", service("kube-dns", "kube-system", ("10.100.0.10",)))
    assert watcher.services() == ()
    watcher._apply("ADDED", service("web", ips=("10.100.9.9",)))
    watcher._replace([service("other", ips=("10.100.1.1",))])  # relist: web deleted meanwhile
    assert watcher.services() == (ServiceInfo("shop", "other", ("10.100.1.1",)),)


class NoPods:
    def by_ip(self, ip: str) -> None:
        return None


def test_records_name_a_cluster_ip_as_its_service() -> None:
    names = PeerNames(NoPods(), lambda: (ME,), lambda: (DNS, API))
    names.refresh()
    assert names("10.100.0.10") == {"peer.kind": "service", "peer.name": "kube-system/kube-dns",
                                    "peer.k8s.service.name": "kube-dns",
                                    "peer.k8s.namespace.name": "kube-system"}
    assert names("fd00:100::a")["peer.name"] == "kube-system/kube-dns"
    assert names("10.158.112.84")["peer.kind"] == "node"
    assert names("10.100.0.11") == {"peer.kind": "address", "peer.name": "10.100.0.11"}


def test_probes_line_counts_services_but_they_give_no_zone() -> None:
    ok, line = describe(ZoneSources("me", "us-west-2b", services=(DNS,)), {})
    assert "Service watch: 1 services with a ClusterIP" in line
    assert not ok and "service" in line  # no zone source; service needs none
