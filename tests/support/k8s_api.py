"""A Kubernetes API server double for pods: real HTTP, real list/watch protocol, on 127.0.0.1.

What it speaks, as kube-apiserver does for ``GET /api/v1/pods``:
- LIST: a ``PodList`` with ``metadata.resourceVersion``, filtered by the
  ``fieldSelector=spec.nodeName=<node>`` query (requests without it are recorded,
  so tests can prove the agent never lists the whole cluster);
- WATCH (``watch=true&resourceVersion=N``): a chunked stream of JSON lines
  ``{"type": ADDED|MODIFIED|DELETED|ERROR, "object": ...}`` with every event after
  N, then new events as they happen, until ``timeoutSeconds``;
- an expired version: an ERROR event with a 410 ``Status`` (as the real server
  sends inside a 200 stream).
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
        self._events: list[tuple[int, str, dict[str, Any]]] = []
        self._oldest_kept = 100  # versions older than this are "expired" (410)
        self._generation = 0  # bumped to drop open watch streams
        self.fail_next = 0
        self.open_watches = 0
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- state changes, as a kubelet and controllers would cause them -------------
    def _record(self, kind: str, pod: dict[str, Any]) -> None:
        with self._cond:
            self._version += 1
            pod["metadata"]["resourceVersion"] = str(self._version)
            self._events.append((self._version, kind, json.loads(json.dumps(pod))))
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
                if parts.path != "/api/v1/pods":
                    return self._json(404, _status(404, "NotFound", f"{parts.path} not served"))
                if api.fail_next > 0:
                    api.fail_next -= 1
                    return self._json(500, _status(500, "InternalError", "injected failure"))
                node = query.get("fieldSelector", "").removeprefix("spec.nodeName=")
                if request["watch"]:
                    return self._watch(node, int(query.get("resourceVersion") or 0),
                                       float(query.get("timeoutSeconds") or 30))
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

            def _watch(self, node: str, since: int, timeout: float) -> None:
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
                if not api._stream(self, node, since, timeout):
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

    def _stream(self, handler: Any, node: str, since: int, timeout: float) -> bool:
        """Send events after ``since`` until timeout (True) or a drop (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            generation = self._generation
            self.open_watches += 1
        try:
            return self._send_until(handler, node, since, deadline, generation)
        finally:
            with self._cond:
                self.open_watches -= 1

    def _send_until(self, handler: Any, node: str, since: int, deadline: float,
                    generation: int) -> bool:
        while time.monotonic() < deadline:
            with self._cond:
                pending = [(v, k, o) for v, k, o in self._events
                           if v > since and (not node or o["spec"]["nodeName"] == node)]
                if not pending:
                    self._cond.wait(min(0.2, max(deadline - time.monotonic(), 0)))
                if self._generation != generation:
                    return False
            for version, kind, obj in pending:
                handler._chunk({"type": kind, "object": obj})
                since = version
        return True


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
