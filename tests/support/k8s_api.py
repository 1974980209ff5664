"""A Kubernetes API server double for pods, nodes, services: real HTTP, list/watch, on 127.0.0.1.

What it speaks, as kube-apiserver does for ``GET /api/v1/pods``:
- LIST: a ``PodList`` with ``metadata.resourceVersion``, filtered by the
  ``fieldSelector=spec.nodeName=<node>`` query (requests without it are recorded,
  so tests can prove the agent never lists the whole cluster);
- WATCH (``watch=true&resourceVersion=N``): a chunked stream of JSON lines
  ``{"type": ADDED|MODIFIED|DELETED|ERROR, "object": ...}`` with every event after
  N, then new events as they happen, until ``timeoutSeconds``;
- an expired version: an ERROR event with a 410 ``Status`` (as the real server
  sends inside a 200 stream).
Nodes (``GET /api/v1/nodes``) as the server serves a cluster-wide resource: LIST
in pages (``limit``, ``continue``), WATCH with BOOKMARK events for the watches that
asked (``allowWatchBookmarks``). Services (``GET /api/v1/services``, all namespaces) the
same way.
Faults for robustness tests: drop the open watch streams mid-stream, expire
versions, answer the next requests with 500.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def make_pod(name: str, namespace: str, node: str, uid: str | None = None, ip: str = "",
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()),
                         "labels": labels or {}, "resourceVersion": "0"},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running", "podIP": ip}}


def make_node(name: str, zone: str = "", addresses: tuple[str, ...] = (),
              pod_cidrs: tuple[str, ...] = ()) -> dict[str, Any]:
    """A Node as the kubelet registers it on EKS (zone label, InternalIP, optional podCIDRs)."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if zone:
        labels |= {"topology.kubernetes.io/zone": zone,
                   "topology.kubernetes.io/region": zone[:-1]}
    spec: dict[str, Any] = {"providerID": f"aws:///{zone}/i-0{abs(hash(name)) % 10**16:016d}"}
    if pod_cidrs:
        spec |= {"podCIDR": pod_cidrs[0], "podCIDRs": list(pod_cidrs)}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": labels,
                         "resourceVersion": "0"},
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": a} for a in addresses]
                       + [{"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def make_service(name: str, namespace: str, cluster_ips: tuple[str, ...] = (),
                 ports: tuple[int, ...] = (80,)) -> dict[str, Any]:
    """A ClusterIP Service (``cluster_ips`` empty: headless, clusterIP None)."""
    ips = list(cluster_ips) or ["None"]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "resourceVersion": "0"},
            "spec": {"type": "ClusterIP", "clusterIP": ips[0], "clusterIPs": ips,
                     "ipFamilies": ["IPv6" if ":" in ip else "IPv4" for ip in cluster_ips],
                     "ports": [{"port": p, "protocol": "TCP", "targetPort": p}
                               for p in ports]}}


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig naming ``server`` with no credentials (the double asks for none)."""
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: "{server}"}}}}]
users: [{{name: test, user: {{}}}}]
contexts: [{{name: test, context: {{cluster: test, user: test}}}}]
current-context: test
""")
    return path


class KubeApiDouble:
    def __init__(self, port: int = 0) -> None:
        self.delay = 0.0  # seconds before answering any request (slow or hanging API)
        self._cond = threading.Condition()
        self._version = 100
        self._pods: dict[str, dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._services: dict[str, dict[str, Any]] = {}  # namespace/name → Service
        self._events: list[tuple[int, str, str, dict[str, Any]]] = []  # version, resource, type
        self._oldest_kept = 100  # versions older than this are "expired" (410)
        self._generation = 0  # bumped to drop open watch streams
        self.fail_next = 0
        self.expire_next_continue = 0  # answer this many continued LISTs with 410 (expired)
        self.open_watches = 0
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def core_api_factory(self) -> Any:
        """A factory of kubernetes.client.CoreV1Api talking to this double (what the agent's
        watchers are given)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return lambda: client.CoreV1Api(client.ApiClient(configuration))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- state changes, as a kubelet and controllers would cause them -------------
    def _record(self, kind: str, obj: dict[str, Any], resource: str = "pods") -> None:
        with self._cond:
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self._events.append((self._version, resource, kind, json.loads(json.dumps(obj))))
            self._cond.notify_all()

    def add(self, pod: dict[str, Any]) -> dict[str, Any]:
        self._pods[pod["metadata"]["uid"]] = pod
        self._record("ADDED", pod)
        return pod

    def relabel(self, uid: str, labels: dict[str, str]) -> None:
        self._pods[uid]["metadata"]["labels"] = labels
        self._record("MODIFIED", self._pods[uid])

    def delete(self, uid: str) -> None:
        self._record("DELETED", self._pods.pop(uid))

    def put_node(self, node: dict[str, Any]) -> dict[str, Any]:
        """Add a node, or replace it (MODIFIED) when one of that name exists."""
        name = node["metadata"]["name"]
        kind = "MODIFIED" if name in self._nodes else "ADDED"
        self._nodes[name] = node
        self._record(kind, node, "nodes")
        return node

    def delete_node(self, name: str) -> None:
        self._record("DELETED", self._nodes.pop(name), "nodes")

    def put_service(self, service: dict[str, Any]) -> dict[str, Any]:
        """Add a Service, or replace it (MODIFIED: a changed ClusterIP) by namespace/name."""
        meta = service["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        kind = "MODIFIED" if key in self._services else "ADDED"
        self._services[key] = service
        self._record(kind, service, "services")
        return service

    def delete_service(self, namespace: str, name: str) -> None:
        self._record("DELETED", self._services.pop(f"{namespace}/{name}"), "services")

    def bookmark(self) -> int:
        """Other objects changed (the version moves on) and the server sends a BOOKMARK."""
        with self._cond:
            self._version += 1
            self._events.append((self._version, "*", "BOOKMARK", {}))
            self._cond.notify_all()
            return self._version

    def expire_before(self, version: int) -> None:
        """Compaction up to ``version``: clients holding it or newer may still watch."""
        with self._cond:
            self._oldest_kept = version
            self._generation += 1
            self._cond.notify_all()

    # --- faults ------------------------------------------------------------------
    def drop_watches(self) -> None:
        """Cut every open watch stream without a clean end (a load balancer reset)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def expire_all_versions(self) -> None:
        """Compaction: every version the clients hold is now too old (410 Gone).

        The server's current version moves on and stays valid, as after etcd compaction:
        a client that lists again can watch from what the list returned.
        """
        with self._cond:
            self._version += 1
            self._oldest_kept = self._version
            self._generation += 1
            self._cond.notify_all()

    def lists(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if not r["watch"]]

    def close(self) -> None:
        self.drop_watches()
        self._server.shutdown()
        self._server.server_close()

    # --- HTTP --------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                request = {"path": parts.path, "query": query,
                           "watch": query.get("watch") in ("true", "1")}
                api.requests.append(request)
                if api.delay:
                    time.sleep(api.delay)
                resource = parts.path.removeprefix("/api/v1/")
                if resource not in ("pods", "nodes", "services"):
                    return self._json(404, _status(404, "NotFound", f"{parts.path} not served"))
                if api.fail_next > 0:
                    api.fail_next -= 1
                    return self._json(500, _status(500, "InternalError", "injected failure"))
                node = query.get("fieldSelector", "").removeprefix("spec.nodeName=")
                if request["watch"]:
                    return self._watch(resource, node, int(query.get("resourceVersion") or 0),
                                       float(query.get("timeoutSeconds") or 30),
                                       query.get("allowWatchBookmarks") == "true")
                if resource == "services":
                    return self._json(200, api._list_services())
                if resource == "nodes" and query.get("continue") and api.expire_next_continue:
                    api.expire_next_continue -= 1  # as kube-apiserver: HTTP 410, a Status
                    return self._json(410, _status(410, "Expired", "The provided continue "
                                                   "parameter is too old"))
                if resource == "nodes":
                    return self._json(200, api._list_nodes(int(query.get("limit") or 0),
                                                           query.get("continue", "")))
                return self._json(200, api._list(node))

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, event: dict[str, Any]) -> None:
                data = (json.dumps(event) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _watch(self, resource: str, node: str, since: int, timeout: float,
                       bookmarks: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if since < api._oldest_kept:
                    self._chunk({"type": "ERROR", "object": _status(
                        410, "Expired", f"too old resource version: {since} "
                        f"({api._oldest_kept})")})
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if not api._stream(self, (resource, node, bookmarks), since, timeout):
                    self.close_connection = True  # dropped: no terminating chunk
                    return
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def _list(self, node: str) -> dict[str, Any]:
        with self._cond:
            items = [p for p in self._pods.values() if not node or p["spec"]["nodeName"] == node]
            return {"kind": "PodList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self._version)},
                    "items": json.loads(json.dumps(items))}

    def _list_nodes(self, limit: int, token: str) -> dict[str, Any]:
        """A page of the NodeList; ``continue`` is the offset of the next page."""
        with self._cond:
            items = sorted(self._nodes.values(), key=lambda n: n["metadata"]["name"])
            start = int(token or 0)
            end = start + limit if limit else len(items)
            meta = {"resourceVersion": str(self._version)}
            if end < len(items):
                meta["continue"] = str(end)
            return {"kind": "NodeList", "apiVersion": "v1", "metadata": meta,
                    "items": json.loads(json.dumps(items[start:end]))}

    def _list_services(self) -> dict[str, Any]:
        with self._cond:
            items = [self._services[k] for k in sorted(self._services)]
            return {"kind": "ServiceList", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self._version)},
                    "items": json.loads(json.dumps(items))}

    def _stream(self, handler: Any, what: tuple[str, str, bool], since: int,
                timeout: float) -> bool:
        """Send events after ``since`` until timeout (True) or a drop (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            generation = self._generation
            self.open_watches += 1
        try:
            return self._send_until(handler, what, since, deadline, generation)
        finally:
            with self._cond:
                self.open_watches -= 1

    def _send_until(self, handler: Any, what: tuple[str, str, bool], since: int,
                    deadline: float, generation: int) -> bool:
        while time.monotonic() < deadline:
            with self._cond:
                pending = [(v, k, o if k != "BOOKMARK" else _bookmark(what[0], v))
                           for v, r, k, o in self._events if v > since and _wanted(what, r, k, o)]
                if not pending:
                    self._cond.wait(min(0.2, max(deadline - time.monotonic(), 0)))
                if self._generation != generation:
                    return False
            for version, kind, obj in pending:
                handler._chunk({"type": kind, "object": obj})
                since = version
        return True


def _wanted(what: tuple[str, str, bool], resource: str, kind: str, obj: dict[str, Any]) -> bool:
    watched, node, bookmarks = what
    if kind == "BOOKMARK":
        return bookmarks
    return resource == watched and (not node or obj["spec"].get("nodeName") == node)


def _bookmark(resource: str, version: int) -> dict[str, Any]:
    kind = {"pods": "Pod", "nodes": "Node", "services": "Service"}[resource]
    return {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(version)}}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
