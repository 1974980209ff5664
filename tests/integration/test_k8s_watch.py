"""Pod metadata through list+watch against an API double that speaks the real protocol."""

from __future__ import annotations

import time

import pytest

from otel_netreceiver.k8s.pods import PodWatcher
from tests.support.k8s_api import KubeApiDouble, make_pod
from tests.support.soak import wait_until

NODE = "ip-10-0-1-23.ec2.internal"


@pytest.fixture
def api():
    double = KubeApiDouble()
    yield double
    double.close()


@pytest.fixture
def watcher(api):
    created: list[PodWatcher] = []

    def start() -> PodWatcher:
        w = PodWatcher(NODE, api.core_api_factory(), backoff_base=0.1)
        created.append(w)
        w.start()
        return w

    yield start
    for w in created:
        w.stop()


def test_lists_this_nodes_pods_then_follows_the_watch(api, watcher) -> None:
    mine = api.add(make_pod("web-1", "shop", NODE, ip="10.1.0.5", labels={"app": "web"}))
    other = api.add(make_pod("db-1", "shop", "other-node"))
    w = watcher()
    wait_until(lambda: w.get(mine["metadata"]["uid"]) is not None)
    meta = w.get(mine["metadata"]["uid"])
    assert (meta.name, meta.namespace, meta.ip, dict(meta.labels)) == (
        "web-1", "shop", "10.1.0.5", {"app": "web"})
    assert w.get(other["metadata"]["uid"]) is None  # never another node's pod
    late = api.add(make_pod("web-2", "shop", NODE))
    wait_until(lambda: w.get(late["metadata"]["uid"]) is not None)
    api.relabel(mine["metadata"]["uid"], {"app": "web", "track": "canary"})
    wait_until(lambda: dict(w.get(mine["metadata"]["uid"]).labels).get("track") == "canary")
    api.delete(late["metadata"]["uid"])
    wait_until(lambda: w.get(late["metadata"]["uid"]) is None)
    assert w.stats.lists == 1
    # every request was restricted to this node, and none was a cluster-wide list
    assert api.requests and all(
        r["query"].get("fieldSelector") == f"spec.nodeName={NODE}" for r in api.requests)


def test_dropped_watch_resumes_from_its_version_without_relisting(api, watcher) -> None:
    first = api.add(make_pod("a", "ns", NODE))
    w = watcher()
    wait_until(lambda: w.get(first["metadata"]["uid"]) is not None)
    wait_until(lambda: api.open_watches == 1)
    api.drop_watches()
    after = api.add(make_pod("b", "ns", NODE))
    wait_until(lambda: w.get(after["metadata"]["uid"]) is not None)
    assert w.stats.lists == 1  # resumed, not re-listed
    watches = [r for r in api.requests if r["watch"]]
    assert len(watches) >= 2
    assert int(watches[-1]["query"]["resourceVersion"]) >= int(
        first["metadata"]["resourceVersion"])


def test_410_gone_relists_once_and_the_state_is_the_servers(api, watcher) -> None:
    keep = api.add(make_pod("keep", "ns", NODE))
    lost = api.add(make_pod("lost", "ns", NODE))
    w = watcher()
    wait_until(lambda: w.get(lost["metadata"]["uid"]) is not None)
    wait_until(lambda: api.open_watches == 1)
    api.expire_all_versions()  # the watcher's version is compacted away...
    api._pods.pop(lost["metadata"]["uid"])  # ...and a deletion it never saw as an event
    wait_until(lambda: w.stats.lists == 2)
    wait_until(lambda: w.get(lost["metadata"]["uid"]) is None)
    assert w.get(keep["metadata"]["uid"]) is not None
    time.sleep(0.5)
    assert w.stats.lists == 2  # one re-list, not a loop


def test_api_errors_back_off_degrade_and_recover(api, watcher) -> None:
    pod = api.add(make_pod("a", "ns", NODE))
    api.fail_next = 4
    w = watcher()
    time.sleep(0.6)
    assert w.get(pod["metadata"]["uid"]) is None  # degraded: no metadata yet
    assert w.stats.errors >= 1 and "500" in w.stats.last_error
    wait_until(lambda: w.get(pod["metadata"]["uid"]) is not None, timeout=15)
    assert w.stats.last_error == "" and w.stats.connected
    # backoff, not a storm: 4 failures then success took a handful of requests
    assert len(api.requests) <= 8


def test_a_server_that_keeps_answering_410_is_not_stormed(api, watcher) -> None:
    api.add(make_pod("a", "ns", NODE))
    api._oldest_kept = 10**9  # every version is "too old", even the one a list just returned
    w = watcher()
    time.sleep(2.0)
    # with backoff 0.1 s doubling: a few re-lists in 2 s, not hundreds
    assert 2 <= w.stats.lists <= 8, w.stats
