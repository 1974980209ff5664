"""Real DNS tools in test pods: dnsmasq as the resolver, tcpdump as the independent witness.

Why these and not the repo's own server and parser: the issue asks for counts
cross-checked against a tool that shares no code with the probe. dnsmasq (Debian's
dnsmasq-base) answers from its own records and logs every query it receives
(``--log-queries``); tcpdump decodes DNS itself (print-domain.c) and its text output
(``-n -l``) is parsed here, never the pcap with dns/message.py.

tcpdump's DNS line (print-domain.c, ns_print): a query is ``ID[flags] [1au] TYPE? name.``,
a response ``ID[ RCODE][*][-][|] an/ns/ar ...`` where RCODE is printed only when not
NOERROR, ``*`` is AA, ``-`` RA clear and ``|`` TC. Over TCP the same text follows the
segment's ``length N``.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from otel_netreceiver.model import Collection
from tests.support.pods import Pod, _die_with_parent
from tests.support.tools import require_tool

# tcpdump's rcode names (print-domain.c ns_rcode) → the probe's attribute values
RCODES = {"": "NOERROR", "NXDomain": "NXDOMAIN", "ServFail": "SERVFAIL", "Refused": "REFUSED"}
_ADDRESS = r"\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f:]*"  # IPv4, IPv6 (then .port)
_LINE = re.compile(
    rf"^(?P<time>\d+:\d+:\d+\.\d+) IP6? (?P<src>{_ADDRESS})\.(?P<sport>\d+) > "
    rf"(?P<dst>{_ADDRESS})\.(?P<dport>\d+): (?P<rest>.*)$")
_TCP = re.compile(r"^Flags \[[^\]]*\].*? length (?P<length>\d+)(?: (?P<dns>.*))?$")
_RESPONSE = re.compile(r"^(?P<id>\d+)(?: (?P<rcode>[A-Z][A-Za-z]+))?(?P<flags>[*\-|]*) "
                       r"\d+/\d+/\d+")
_QUERY = re.compile(r"^(?P<id>\d+)(?P<flags>[+%|]*) (?:\[[^\]]*\] )*(?P<qtype>[A-Z0-9]+)\? "
                    r"(?P<name>\S+) ")


@dataclass(frozen=True)
class Seen:
    """One DNS message as tcpdump printed it (a line without a DNS message is skipped)."""

    at: float          # seconds since midnight, tcpdump's clock
    client: tuple[str, int]
    transport: str     # udp | tcp
    id: int | None     # None: tcpdump could not decode the message (malformed)
    response: bool
    rcode: str         # the probe's attribute value (NOERROR, ...), "" for queries
    truncated: bool
    qtype: str
    name: str = ""     # a query's name as tcpdump printed it ("api.svc.test.")


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _message(rest: str) -> tuple[str, str] | None:
    """(transport, DNS text) of a line's payload, or None for a TCP segment without data."""
    tcp = _TCP.match(rest)
    if tcp is None:
        return "udp", rest
    if int(tcp["length"]) == 0 or not tcp["dns"]:
        return None
    return "tcp", tcp["dns"]


def parse_tcpdump(text: str, port: int = 53) -> list[Seen]:
    """The DNS messages in ``tcpdump -n -l`` output, in order (see the module docstring)."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:  # fragments after the first (no ports), tcpdump's own chatter
            continue
        found = _message(m["rest"])
        if found is None:
            continue
        transport, dns = found
        response = int(m["sport"]) == port
        client = (m["dst"], int(m["dport"])) if response else (m["src"], int(m["sport"]))
        decoded = (_RESPONSE if response else _QUERY).match(dns)
        if decoded is None:
            out.append(Seen(_seconds(m["time"]), client, transport, None, response, "", False,
                            ""))
            continue
        rcode = RCODES.get(decoded["rcode"] or "", "other") if response else ""
        out.append(Seen(_seconds(m["time"]), client, transport, int(decoded["id"]), response,
                        rcode, "|" in decoded["flags"],
                        "" if response else decoded["qtype"],
                        "" if response else decoded["name"]))
    return out


@dataclass(frozen=True)
class Exchange:
    """tcpdump's messages reduced to what the probe counts (matched like the probe: client
    address and port, transaction id, transport)."""

    queries: Counter[tuple[str, str]]      # (qtype class, transport) → n
    responses: Counter[tuple[str, str]]    # (rcode, transport) → n
    truncated: int
    unanswered: int                        # queries (by key) no response followed
    late: int                              # responses `timeout` or more after the last
                                           # query with their key (re-sent ones included)
    unmatched: int                         # responses with no query before them
    undecoded: int                         # messages tcpdump could not decode

    @classmethod
    def of(cls, seen: list[Seen], timeout: float) -> Exchange:
        queries: Counter[tuple[str, str]] = Counter()
        responses: Counter[tuple[str, str]] = Counter()
        last: dict[tuple, float] = {}
        answered: set[tuple] = set()
        late = truncated = undecoded = unmatched = 0
        for s in seen:
            if s.id is None:
                undecoded += 1
                continue
            key = (s.client, s.id, s.transport)
            if not s.response:
                cls_ = s.qtype if s.qtype in ("A", "AAAA") else "other"
                queries[(cls_, s.transport)] += 1
                last[key] = s.at
                continue
            responses[(s.rcode, s.transport)] += 1
            truncated += s.truncated
            if key not in last:
                unmatched += 1
                continue
            answered.add(key)
            late += s.at - last[key] >= timeout
        return cls(queries, responses, truncated, len(set(last) - answered), late, unmatched,
                   undecoded)


@contextlib.contextmanager
def tcpdump(interface: str, expression: str = "port 53",
            netns: str | None = None) -> Iterator[list[Seen]]:
    """Capture on ``interface`` (of namespace ``netns``: the root's if None) while the block
    runs; the list fills when it ends.

    Waits for tcpdump's "listening on" before yielding, and checks it dropped nothing."""
    seen: list[Seen] = []
    inside = ["ip", "netns", "exec", netns] if netns else []
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([*inside, require_tool("tcpdump"), "-n", "-l", "-B", "16384", "-i",
                                 interface, expression], stdout=out,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        assert proc.stderr is not None
        header = ""
        while "listening on" not in header:
            line = proc.stderr.readline()
            if not line:
                raise AssertionError(f"tcpdump on {interface} did not start: {header}")
            header += line
        try:
            yield seen
        finally:
            time.sleep(0.2)  # the last packets reach tcpdump's buffer
            proc.send_signal(signal.SIGINT)
            err = proc.communicate(timeout=10)[1]
        out.seek(0)
        seen.extend(parse_tcpdump(out.read()))
    dropped = re.search(r"(\d+) packets? dropped by kernel", err)
    assert dropped is not None and dropped[1] == "0", err


def dnsmasq_argv(listen: str, log: Path, *records: str, log_queries: bool = True) -> list[str]:
    """dnsmasq in the foreground, from nothing but its arguments: no /etc/dnsmasq.conf,
    /etc/hosts or resolv.conf; names under .test it does not know are NXDOMAIN."""
    return [require_tool("dnsmasq"), "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", f"--listen-address={listen}", "--bind-interfaces",
            "--cache-size=0", "--local=/test/", f"--log-facility={log}",
            *(["--log-queries"] if log_queries else []),
            "--user=root", "--group=root", "--pid-file=", *records]


class Dnsmasq:
    """A dnsmasq in a pod, with its query log (what it received, what it answered)."""

    def __init__(self, pod: Pod, *records: str, log_queries: bool = True,
                 listen: str | None = None) -> None:
        self.log = Path(tempfile.mkstemp(prefix="onr-dnsmasq-", suffix=".log")[1])
        argv = dnsmasq_argv(listen or pod.pod_ip, self.log, *records, log_queries=log_queries)
        self.proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, *argv],
                                     # --no-daemon echoes the log to stderr too: a pipe
                                     # nobody reads would fill and stop dnsmasq
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while "using only locally-known addresses" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"dnsmasq did not start: {self.log.read_text()}")
            time.sleep(0.02)

    def queries(self) -> Counter[str]:
        """Queries dnsmasq logged as received from a client, by type (query[A] ...)."""
        return Counter(re.findall(r"query\[(\w+)\] \S+ from ", self.log.read_text()))

    def answers(self) -> Counter[str]:
        """What dnsmasq logged it answered with: NXDOMAIN, SERVFAIL, REFUSED, or an answer."""
        text = self.log.read_text()
        out: Counter[str] = Counter()
        out["NXDOMAIN"] = len(re.findall(r" is NXDOMAIN$", text, re.M))
        out["SERVFAIL"] = len(re.findall(r"reply error is SERVFAIL$", text, re.M))
        out["REFUSED"] = len(re.findall(r"error is REFUSED", text))
        return +out

    def __enter__(self) -> Dnsmasq:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.unlink(missing_ok=True)


# --- reading the probe's counts next to the witnesses' ---

def counts(collection: Collection, metric: str, pod: Pod, *keys: str,
            **match: str) -> Counter[tuple]:
    """The metric's points of ``pod`` matching ``match``, summed by the ``keys`` attributes."""
    out: Counter[tuple] = Counter()
    for point in collection.points:
        a = dict(point.attributes)
        if (point.metric.name == "netreceiver.pod.dns." + metric and a.get("k8s.pod.uid") == pod.uid
                and all(a.get(k.replace("_", ".")) == v for k, v in match.items())):
            value = point.value
            out[tuple(a.get(k) for k in keys)] += int(getattr(value, "count", value))
    return out


class Delta:
    """What moved between two collections, per pod."""

    def __init__(self, before: Collection, after: Collection) -> None:
        self.before, self.after = before, after

    def __call__(self, metric: str, pod: Pod, *keys: str, **match: str) -> Counter[tuple]:
        moved = counts(self.after, metric, pod, *keys, **match)
        moved.subtract(counts(self.before, metric, pod, *keys, **match))
        return +moved

    def total(self, metric: str, pod: Pod, **match: str) -> int:
        return sum(self(metric, pod, **match).values())


def dig(client: Pod, server: str, *queries: str, options: tuple[str, ...] = ()) -> list[str]:
    """One dig process per query (name/TYPE): its socket is gone when the next starts.
    Returns the status dig printed for each ("timeout" when it got none)."""
    statuses = []
    for spec in queries:
        name, qtype = spec.split("/")
        out = client.exec(require_tool("dig"), f"@{server}", "+tries=1", "+timeout=1",
                          *options, name, qtype, check=False).stdout
        found = re.findall(r"status: (\w+)", out)
        statuses.append(found[-1] if found else "timeout")
    return statuses


def client_matches_tcpdump(delta: Delta, client: Pod, seen: Exchange) -> None:
    """The probe's client-side counts are tcpdump's, query for query, rcode for rcode."""
    queries = delta("queries", client, "dns.question.type", "network.transport",
                    dns_role="client")
    assert queries == seen.queries
    responses = delta("responses", client, "dns.response.code", "network.transport",
                      dns_role="client")
    assert responses == seen.responses
    assert delta.total("truncated", client, dns_role="client") == seen.truncated
