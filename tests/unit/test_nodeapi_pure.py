"""The node API's pure parts: node addresses, request validation, the answer, rate limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.diagnosis.rules import RULES
from otel_netreceiver.nodeapi.callers import (
    Caller,
    CallerIdentifier,
    Refused,
    node_addresses,
    parse_fib_trie_locals,
)
from otel_netreceiver.nodeapi.correlate import BadRequest, answer, parse_ask

PROC = Path(__file__).parent.parent / "data" / "proc"
NOW = 1_800_000_000 * 10**9


def _fake_proc(tmp_path: Path) -> str:
    net = tmp_path / "self" / "net"
    net.mkdir(parents=True)
    for name in ("fib_trie", "if_inet6"):
        (net / name).write_text((PROC / "1" / "net" / name).read_text())
    return str(tmp_path)


def test_local_addresses_come_from_the_kernels_fib_trie(tmp_path):
    text = (PROC / "1" / "net" / "fib_trie").read_text()
    locals_ = parse_fib_trie_locals(text)
    assert "127.0.0.1" in locals_ and "10.251.47.1" in locals_
    assert "10.251.47.3" not in locals_  # broadcast, not an address of the node
    assert "10.251.47.0" not in locals_
    found = node_addresses(_fake_proc(tmp_path))
    assert locals_ <= found and "::1" in found


def test_callers_by_address(tmp_path):
    from otel_netreceiver.k8s.directory import PodMeta

    pods = {"10.251.9.2": PodMeta("uid-9", "web", "shop", "10.251.9.2", ips=("10.251.9.2",)),
            "10.251.47.1": PodMeta("uid-h", "hostnet", "kube-system", "10.251.47.1",
                                   host_network=True, ips=("10.251.47.1",))}
    ident = CallerIdentifier(_fake_proc(tmp_path), lambda uid: None, pods.get)
    assert ident.from_ip("10.251.9.2") == Caller("pod", "uid-9", "web", "shop", "ip 10.251.9.2")
    assert ident.from_ip("::ffff:10.251.9.2").pod_uid == "uid-9"
    assert ident.from_ip("10.251.47.1").kind == "host"  # a hostNetwork pod: node data only
    with pytest.raises(Refused, match=r"10\.9\.9\.9 is neither a pod"):
        ident.from_ip("10.9.9.9")


@pytest.mark.parametrize(("body", "problem"), [
    ([], "body: must be a JSON object"),
    ({"signal": "dns", "extra": 1}, "extra: unknown field"),
    ({"signal": "http"}, "signal: must be one of dns, socket"),
    ({"signal": "dns", "window_seconds": 0}, "window_seconds: must be a number from 1 to 300"),
    ({"signal": "dns", "window_seconds": True}, "window_seconds"),
    ({"signal": "dns", "at_unix_nano": "soon"}, "at_unix_nano: must be a positive integer"),
    ({"signal": "dns", "at_unix_nano": NOW + 60 * 10**9}, "at_unix_nano: is in the future"),
    ({"signal": "socket", "transport": "sctp"}, "transport: must be one of"),
    ({"signal": "socket", "error_type": "x" * 65}, "error_type: must be a string"),
])
def test_bad_requests_name_the_field(body, problem):
    with pytest.raises(BadRequest, match=problem.replace("(", r"\(")):
        parse_ask(body, NOW)


class _Nothing:
    def evaluate(self, condition, question):
        return []


def test_the_answer_shows_the_callers_own_identity_and_the_window():
    ask = parse_ask({"signal": "dns", "error_type": "timeout", "at_unix_nano": NOW - 10**9,
                     "window_seconds": 20}, NOW)
    caller = Caller("pod", "uid-9", "web", "shop")
    doc = answer(ask, caller, RULES, _Nothing(), "node-1", NOW)
    assert doc["verdict"] == "nothing_abnormal" and doc["findings"] == []
    assert doc["caller"] == {"kind": "pod", "k8s.pod.uid": "uid-9", "k8s.pod.name": "web",
                             "k8s.namespace.name": "shop"}
    assert doc["window"]["seconds"] == 21.0  # 20 s before the error, up to now
    assert answer(ask, Caller("host"), RULES, _Nothing(), "n", NOW)["caller"] == {"kind": "host"}
