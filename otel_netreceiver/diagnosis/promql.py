"""Conditions as PromQL (remote mode); pure.

The names are the ones that arrive in Prometheus/AMP: the catalogue's metric through
``naming.prometheus_name`` (the ADOT/vmagent translation), attribute keys with dots
as underscores; a ``raw`` signal is already a Prometheus name (the control plane's own).
Every expression aggregates to the condition's evidence groups, so the engine sees
one value per group exactly as it does in local mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otel_netreceiver.catalogue import metric
from otel_netreceiver.diagnosis.model import Condition, Op, Question, Scope, Signal
from otel_netreceiver.model import Kind
from otel_netreceiver.naming import prometheus_name, sanitize

# Where the agent's node name lands: ADOT's resource_to_telemetry_conversion and vmagent's
# OTLP ingestion copy resource attributes to labels (k8s.node.name in Kubernetes, host.name
# everywhere); a --node filter accepts either.
NODE_LABELS = ("k8s_node_name", "host_name")
NODE_ATTRIBUTE = "k8s.node.name"
_REGEX_META = re.compile(r"([.^$*+?()\[\]{}|\\])")


POD_LABEL = "k8s_pod_uid"


@dataclass(frozen=True, slots=True)
class Target:
    """What remote mode looks at: one node (``--node``) or the whole cluster."""

    node: str = ""


def batched(signal: Signal, question: Question) -> bool:
    """diagnose asks every pod the same pod-scope condition: one query answers them all."""
    return question.every_pod and signal.scope is Scope.POD and not signal.raw


def label(key: str, signal: Signal) -> str:
    return key if signal.raw else sanitize(key)


def series(signal: Signal) -> tuple[str, Kind | None]:
    """The Prometheus base name and the metric kind (None: a raw name, kind unknown)."""
    if signal.raw:
        return signal.metric, None
    definition = metric(signal.metric)
    return prometheus_name(definition), definition.kind


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _matchers(signal: Signal, question: Question, node_label: str, node: str,
              batch: bool) -> str:
    out = [f"{label(k, signal)}={_string(v)}" for k, v in signal.match]
    excluded: dict[str, list[str]] = {}
    for k, v in signal.exclude:
        excluded.setdefault(label(k, signal), []).append(_REGEX_META.sub(r"\\\1", v))
    out += [f"{k}!~{_string('|'.join(vs))}" for k, vs in excluded.items()]
    if not signal.raw:
        if signal.scope is Scope.POD and batch:
            out.append('k8s_pod_uid!=""')
            if question.namespace:
                out.append(f"k8s_namespace_name={_string(question.namespace)}")
        elif signal.scope is Scope.POD:
            out.append(f"k8s_pod_uid={_string(question.pod_uid)}")
        elif signal.scope is Scope.HOST:
            out.append('netns_kind="host"')
        elif signal.scope is Scope.ALL and question.namespace:
            out.append(f"k8s_namespace_name={_string(question.namespace)}")
        if node:
            out.append(f"{node_label}={_string(node)}")
    return "{" + ", ".join(out) + "}"


def groups(signal: Signal, target: Target, batch: bool = False) -> tuple[str, ...]:
    """The labels an expression keeps; the cluster view adds the node to non-pod evidence,
    a batch (every pod at once) the pod UID."""
    keys = [label(k, signal) for k in (*signal.group_by, *(k for k, _ in signal.match))]
    if not signal.raw and not target.node and signal.scope is not Scope.POD:
        keys.append(NODE_LABELS[0])
    if batch:
        keys.append(POD_LABEL)
    return tuple(dict.fromkeys(keys))


BURST_SECONDS = 60.0  # a ratio's sub-window in remote mode


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def _one(condition: Condition, question: Question, target: Target, node_label: str,
         by: str, batch: bool) -> str:
    signal, w = condition.signal, _duration(question.seconds)
    name, kind = series(signal)
    sel = _matchers(signal, question, node_label, target.node, batch)
    op = condition.op
    if op in (Op.INCREASE, Op.RATE):
        return f"sum by ({by}) ({op.value}({name}{sel}[{w}]))"
    if op is Op.RATIO:
        assert condition.of is not None, "a RATIO names its denominator in `of`"
        of_name, _ = series(condition.of)
        of_sel = _matchers(condition.of, question, node_label, target.node, batch)
        # over bursts, as local mode: the worst minute's ratio, not the whole window's
        step = _duration(min(BURST_SECONDS, question.seconds))
        ratio = (f"sum by ({by}) (increase({name}{sel}[{step}])) / "
                 f"sum by ({by}) (increase({of_name}{of_sel}[{step}]))")
        if question.seconds <= BURST_SECONDS:
            return ratio
        return f"max by ({by}) (max_over_time(({ratio})[{w}:{step}]))"
    if op is Op.LEVEL:
        return f"max by ({by}) (last_over_time({name}{sel}[{w}]))"
    if op is Op.PEAK:
        return f"max by ({by}) (max_over_time({name}{sel}[{w}]))"
    if op is Op.GROWTH:
        if kind is Kind.COUNTER or (kind is None and name.endswith("_total")):
            half = _duration(question.seconds / 2)
            now, before = f"rate({name}{sel}[{half}])", f"rate({name}{sel}[{half}] offset {half})"
        else:
            now, before = f"last_over_time({name}{sel}[{w}])", f"{name}{sel} offset {w}"
        return (f"(sum by ({by}) ({now}) - sum by ({by}) ({before})) / "
                f"sum by ({by}) ({before})")
    return (f"histogram_quantile({condition.q:g}, sum by (le{', ' if by else ''}{by}) "
            f"(rate({name}_bucket{sel}[{w}])))")


def expression(condition: Condition, question: Question, target: Target,
               batch: bool = False) -> str:
    """The PromQL that yields the condition's value per evidence group at the window's end
    (with ``batch``, for every pod at once: the groups carry k8s_pod_uid)."""
    by = ", ".join(groups(condition.signal, target, batch))
    if not target.node or condition.signal.raw:
        return _one(condition, question, target, NODE_LABELS[0], by, batch)
    # either label may carry the node: the left side wins where both match the same group
    return " or ".join(f"({_one(condition, question, target, n, by, batch)})"
                       for n in NODE_LABELS)


def pods_expression(question: Question, target: Target) -> str:
    """The pods seen in the window: any of the agent's series that carries a pod UID."""
    w = _duration(question.seconds)
    base = ['__name__=~"netreceiver_.+"', 'k8s_pod_uid!=""']
    if question.namespace:
        base.append(f"k8s_namespace_name={_string(question.namespace)}")
    sels = [[*base, f"{n}={_string(target.node)}"] for n in NODE_LABELS] if target.node \
        else [base]
    by = "k8s_pod_uid, k8s_pod_name, k8s_namespace_name"
    return " or ".join(f"group by ({by}) (last_over_time({{{', '.join(s)}}}[{w}]))"
                       for s in sels)


def attributes_back(signal: Signal, labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Prometheus labels of a result → the signal's attribute names (as local mode has them)."""
    names = {label(k, signal): k for k in (*signal.group_by, *(k for k, _ in signal.match))}
    names.setdefault(NODE_LABELS[0], NODE_ATTRIBUTE)
    return tuple(sorted((names[k], v) for k, v in labels.items() if k in names and v))
