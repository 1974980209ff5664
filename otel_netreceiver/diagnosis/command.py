"""``otel-netreceiver diagnose``: run the playbooks and say what they found.

Local mode asks the running agent on this node over its Unix socket (its history holds
the last minutes at 1 s): run it on the node as root or inside the agent's pod
(``kubectl exec``); any other caller is refused the node-wide view.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
from typing import Any
from urllib.parse import urlencode

from otel_netreceiver.diagnosis.report import format_report


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def add_parser(sub: Any, config_default: str | None) -> None:
    cmd = sub.add_parser("diagnose", help="run the troubleshooting playbooks and print findings")
    cmd.add_argument("-c", "--config", default=config_default,
                     help="the agent's configuration (for correlation.socket)")
    cmd.add_argument("--socket", help="the agent's node API socket (default: from the config)")
    cmd.add_argument("--since", default="5m", help="how far back to look (default 5m)")
    cmd.add_argument("--pod", default="", help="only findings about this pod (name or UID)")
    cmd.add_argument("--namespace", default="", help="only pods of this Kubernetes namespace")
    cmd.add_argument("--format", choices=("text", "json"), default="text")


def local(socket_path: str, since: str, pod: str, namespace: str) -> dict[str, Any]:
    query = urlencode({k: v for k, v in (("since", since), ("pod", pod),
                                         ("namespace", namespace)) if v})
    conn = _UnixConnection(socket_path, timeout=30)
    try:
        conn.request("GET", f"/v1/diagnose?{query}")
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"the agent at {socket_path} answered {response.status}: "
                           f"{body.get('error', '')}")
    return body


def run(args: argparse.Namespace, socket_from_config: str) -> int:
    path = args.socket or socket_from_config
    if not path:
        print("otel-netreceiver diagnose: local mode needs the agent's node API socket: "
              "--socket PATH or correlation.socket in the configuration", file=sys.stderr)
        return 2
    try:
        doc = local(path, args.since, args.pod, args.namespace)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"otel-netreceiver diagnose: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2) if args.format == "json" else "\n".join(format_report(doc)))
    return 0
