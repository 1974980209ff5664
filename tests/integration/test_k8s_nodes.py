"""Node zones and addresses through list+watch against an API double speaking the real protocol."""

from __future__ import annotations

import pytest

from otel_netreceiver.k8s.nodes import NodeInfo, NodeWatcher, node_info
from tests.support.k8s_api import KubeApiDouble, make_node, make_pod
from tests.support.soak import wait_until


@pytest.fixture
def api():
    double = KubeApiDouble()
    yield double
    double.close()


@pytest.fixture
def watcher(api):
    created: list[NodeWatcher] = []

    def start(**options) -> NodeWatcher:  # type: ignore[no-untyped-def]
        w = NodeWatcher(api.core_api_factory(), backoff_base=0.1, **options)
        created.append(w)
        w.start()
        return w

    yield start
    for w in created:
        w.stop()


def _node_requests(api: KubeApiDouble) -> list[dict]:
    return [r for r in api.requests if r["path"] == "/api/v1/nodes"]


def test_lists_in_pages_from_the_cache_then_follows_the_watch(api, watcher) -> None:
    for i in range(5):
        api.put_node(make_node(f"n{i}", f"us-east-1{'abc'[i % 3]}", (f"10.0.{i}.10",)))
    w = watcher(page=2)
    wait_until(lambda: len(w.nodes()) == 5)
    assert w.get("n1") == NodeInfo("n1", "us-east-1b", ("10.0.1.10",), ())
    lists = [r for r in _node_requests(api) if not r["watch"]]
    assert [r["query"].get("continue") for r in lists] == [None, "2", "4"]
    assert lists[0]["query"]["resourceVersion"] == "0"  # the API server's watch cache
    assert all(r["query"]["limit"] == "2" for r in lists)
    api.put_node(make_node("n5", "us-east-1c", ("10.0.5.10", "2600:1f18::5"), ("10.244.5.0/24",)))
    wait_until(lambda: w.get("n5") is not None)
    assert w.get("n5") == NodeInfo("n5", "us-east-1c", ("10.0.5.10", "2600:1f18::5"),
                                   ("10.244.5.0/24",))
    api.delete_node("n0")
    wait_until(lambda: w.get("n0") is None)
    watch = next(r for r in _node_requests(api) if r["watch"])
    assert watch["query"]["allowWatchBookmarks"] == "true"
    assert w.stats.lists == 1


def test_never_asks_for_pods(api, watcher) -> None:
    api.add(make_pod("web", "shop", "n0"))
    api.put_node(make_node("n0", "us-east-1a", ("10.0.0.10",)))
    w = watcher()
    wait_until(lambda: w.get("n0") is not None)
    assert api.requests and all(r["path"] == "/api/v1/nodes" for r in api.requests)


def test_a_status_update_that_changes_no_kept_field_changes_nothing(api, watcher) -> None:
    node = api.put_node(make_node("n0", "us-east-1a", ("10.0.0.10",)))
    w = watcher()
    wait_until(lambda: w.get("n0") is not None)
    generation, events = w.generation, w.stats.events
    node["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-12-06T20:00:00Z"
    api.put_node(node)
    wait_until(lambda: w.stats.events > events)
    assert w.generation == generation
    node["metadata"]["labels"]["topology.kubernetes.io/zone"] = "us-east-1b"
    api.put_node(node)
    wait_until(lambda: w.get("n0").zone == "us-east-1b")
    assert w.generation == generation + 1


def test_a_bookmark_lets_the_watch_resume_past_a_compaction_without_listing(api, watcher) -> None:
    api.put_node(make_node("n0", "us-east-1a", ("10.0.0.10",)))
    w = watcher()
    wait_until(lambda: api.open_watches == 1)
    for i in range(3):
        api.add(make_pod(f"p{i}", "ns", "elsewhere"))  # other objects move the version on
    marked = api.bookmark()
    wait_until(lambda: w.stats.bookmarks == 1)
    api.expire_before(marked)  # compaction up to the bookmark; the stream drops
    wait_until(lambda: len([r for r in _node_requests(api) if r["watch"]]) == 2)
    resumed = [r for r in _node_requests(api) if r["watch"]][-1]
    assert resumed["query"]["resourceVersion"] == str(marked)
    api.put_node(make_node("n1", "us-east-1b", ("10.0.1.10",)))
    wait_until(lambda: w.get("n1") is not None)
    assert w.stats.lists == 1


def test_an_expired_version_relists_consistently_and_forgets_deleted_nodes(api, watcher) -> None:
    api.put_node(make_node("n0", "us-east-1a", ("10.0.0.10",)))
    api.put_node(make_node("n1", "us-east-1b", ("10.0.1.10",)))
    w = watcher()
    wait_until(lambda: len(w.nodes()) == 2 and api.open_watches == 1)
    api.drop_watches()
    api._nodes.pop("n1")  # deleted while no watch was open, and its event compacted away
    api.expire_all_versions()
    wait_until(lambda: w.stats.lists == 2)
    wait_until(lambda: [n.name for n in w.nodes()] == ["n0"])
    relist = [r for r in _node_requests(api) if not r["watch"]][-1]
    assert "resourceVersion" not in relist["query"]  # not from a cache older than what we saw


def test_an_expired_continue_token_lists_again_from_the_start(api, watcher) -> None:
    for i in range(5):
        api.put_node(make_node(f"n{i}", "us-east-1a", (f"10.0.{i}.10",)))
    api.expire_next_continue = 1  # HTTP 410 on the second page
    w = watcher(page=2)
    wait_until(lambda: len(w.nodes()) == 5 and api.open_watches == 1)
    lists = [r["query"] for r in _node_requests(api) if not r["watch"]]
    assert [(q.get("continue"), q.get("resourceVersion")) for q in lists] == [
        (None, "0"), ("2", None), (None, None), ("2", None), ("4", None)]
    assert w.stats.lists == 1 and w.stats.errors == 0


def test_server_errors_back_off_and_recover(api, watcher) -> None:
    api.put_node(make_node("n0", "us-east-1a", ("10.0.0.10",)))
    api.fail_next = 2
    w = watcher()
    wait_until(lambda: w.get("n0") is not None)
    assert w.stats.errors == 2 and w.stats.connected and not w.stats.last_error


def test_zone_from_the_deprecated_label_and_nodes_without_zone() -> None:
    old = make_node("old", addresses=("10.0.9.9",))
    old["metadata"]["labels"]["failure-domain.beta.kubernetes.io/zone"] = "us-east-1d"
    assert node_info(old) == NodeInfo("old", "us-east-1d", ("10.0.9.9",), ())
    assert node_info(make_node("bare")) == NodeInfo("bare", "", (), ())
    assert node_info({"metadata": {}}) is None
