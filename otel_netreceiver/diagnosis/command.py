"""``otel-netreceiver diagnose``: run the playbooks and say what they found.

Local mode asks the running agent on this node over its Unix socket (its history holds
the last minutes at 1 s): run it on the node as root or inside the agent's pod
(``kubectl exec``); any other caller is refused the node-wide view.

Remote mode (``--prometheus URL``) reads the cluster's metrics store instead: the same
node rules plus the cluster table (control plane, self-load), for one node (``--node``)
or every node, over any window the store keeps; ``--sigv4-region`` signs for AMP.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from otel_netreceiver.config.loader import parse_duration
from otel_netreceiver.diagnosis.aws_credentials import default_source
from otel_netreceiver.diagnosis.model import Question
from otel_netreceiver.diagnosis.promql import Target
from otel_netreceiver.diagnosis.remote import PrometheusSource, QueryClient, RemoteError
from otel_netreceiver.diagnosis.report import format_report
from otel_netreceiver.diagnosis.rules import RULES
from otel_netreceiver.diagnosis.rules_cluster import CLUSTER_RULES
from otel_netreceiver.diagnosis.sigv4 import CredentialsError
from otel_netreceiver.nodeapi.unix_http import UnixConnection


def add_parser(sub: Any, config_default: str | None) -> None:
    cmd = sub.add_parser("diagnose", help="run the troubleshooting playbooks and print findings")
    cmd.add_argument("-c", "--config", default=config_default,
                     help="the agent's configuration (for correlation.socket)")
    cmd.add_argument("--socket", help="the agent's node API socket (default: from the config)")
    cmd.add_argument("--since", default=None,
                     help="how far back to look (default 5m; 1h with --prometheus)")
    cmd.add_argument("--pod", default="", help="only findings about this pod (name or UID)")
    cmd.add_argument("--namespace", default="", help="only pods of this Kubernetes namespace")
    cmd.add_argument("--format", choices=("text", "json"), default="text")
    remote_group = cmd.add_argument_group("remote mode (a Prometheus-compatible query API)")
    remote_group.add_argument("--prometheus", metavar="URL", default="",
                              help="query this Prometheus or AMP workspace URL instead of the "
                                   "local agent (the part before /api/v1/query)")
    remote_group.add_argument("--sigv4-region", metavar="REGION", default="",
                              help="sign requests for AMP in this region (credentials from "
                                   "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                                   "AWS_SESSION_TOKEN)")
    remote_group.add_argument("--node", default="",
                              help="only this node (k8s_node_name or host_name label)")
    remote_group.add_argument("--at", default="",
                              help="end of the window: Unix seconds or ISO 8601 (default now)")


def local(socket_path: str, since: str, pod: str, namespace: str) -> dict[str, Any]:
    query = urlencode({k: v for k, v in (("since", since), ("pod", pod),
                                         ("namespace", namespace)) if v})
    conn = UnixConnection(socket_path, timeout=30)
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


def parse_at(text: str, now: float) -> float:
    """``--at``: Unix seconds or an ISO 8601 time with a zone; empty means now."""
    if not text:
        return now
    try:
        return float(text)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--at {text!r}: not Unix seconds or an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ValueError(f"--at {text!r}: give a time zone (e.g. Z)")
    return at.timestamp()


def parse_since(text: str) -> float:
    """``--since`` for remote mode: the config's durations plus days (the node-load
    post-mortem's growth shows over days, and the store keeps them)."""
    try:
        seconds = float(text[:-1]) * 86400 if text.endswith("d") else parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"--since {text!r}: {exc}") from None
    if seconds < 1:
        raise ValueError(f"--since {text!r}: must be at least 1s")
    return seconds


def remote(args: argparse.Namespace, env: Mapping[str, str], now: float) -> dict[str, Any]:
    """Every rule (node and cluster tables) over the query API; the node API's document."""
    from otel_netreceiver.nodeapi.correlate import diagnosis  # the one shape of the answer

    since = parse_since(args.since or "1h")
    end = parse_at(args.at, now)
    question = Question("", int((end - since) * 1e9), int(end * 1e9), every_pod=True,
                        namespace=args.namespace)
    credentials = default_source(env) if args.sigv4_region else None
    client = QueryClient(args.prometheus, region=args.sigv4_region, credentials=credentials)
    source = PrometheusSource(client, Target(args.node))
    doc = diagnosis(question, args.pod, RULES + CLUSTER_RULES, source, source,
                    args.node or "(cluster)")
    return {"source": args.prometheus, **doc}


def _print(doc: dict[str, Any], fmt: str) -> None:
    print(json.dumps(doc, indent=2) if fmt == "json" else "\n".join(format_report(doc)))


def _run_remote(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    try:
        doc = remote(args, env, time.time())
    except (ValueError, CredentialsError) as exc:
        print(f"otel-netreceiver diagnose: {exc}", file=sys.stderr)
        return 2
    except RemoteError as exc:
        print(f"otel-netreceiver diagnose: {exc}", file=sys.stderr)
        return 1
    _print(doc, args.format)
    return 0


def run(args: argparse.Namespace, socket_from_config: str,
        env: Mapping[str, str] | None = None) -> int:
    if args.prometheus:
        return _run_remote(args, os.environ if env is None else env)
    for flag, value in (("--sigv4-region", args.sigv4_region), ("--node", args.node),
                        ("--at", args.at)):
        if value:
            print(f"otel-netreceiver diagnose: {flag} needs --prometheus (remote mode)",
                  file=sys.stderr)
            return 2
    path = args.socket or socket_from_config
    if not path:
        print("otel-netreceiver diagnose: local mode needs the agent's node API socket: "
              "--socket PATH or correlation.socket in the configuration", file=sys.stderr)
        return 2
    try:
        doc = local(path, args.since or "5m", args.pod, args.namespace)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"otel-netreceiver diagnose: {exc}", file=sys.stderr)
        return 1
    _print(doc, args.format)
    return 0
