"""docs/playbooks.md from the rule tables (rendered by ``otel_netreceiver.docsgen``); pure.

The tables are the playbooks; this page only lays them out, so a rule changed in
rules.py or rules_cluster.py changes the page, and tests/unit/test_docs.py fails
until it is regenerated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_netreceiver.catalogue import metric
from otel_netreceiver.diagnosis.model import Condition, Op, Rule, Signal
from otel_netreceiver.diagnosis.precision_doc import load as load_precision
from otel_netreceiver.diagnosis.precision_doc import precision_markdown
from otel_netreceiver.diagnosis.rules import DETAILS, RULES
from otel_netreceiver.diagnosis.rules_cluster import CLUSTER_RULES
from otel_netreceiver.naming import prometheus_name

_ROLES = (("any of", Rule.deciding), ("all of", Rule.required), ("none of", Rule.excluding),
          ("shown with", Rule.supporting))


def _number(value: float) -> str:
    if value >= 1024**3:
        return f"{value / 1024**3:.4g} GiB"
    return f"{value:g}"


def _threshold(c: Condition) -> str:
    what = {Op.INCREASE: "increase", Op.RATE: "rate /s", Op.RATIO: "ratio (over its burst)",
            Op.LEVEL: "level", Op.PEAK: "peak in window", Op.GROWTH: "growth",
            Op.QUANTILE: f"p{c.q * 100:g}"}[c.op]
    parts = []
    if c.above is not None:
        parts.append(f"> {c.above:.0%}" if c.op is Op.GROWTH else f"> {_number(c.above)}")
    if c.below is not None:
        parts.append(f"< {c.below:.0%}" if c.op is Op.GROWTH else f"< {_number(c.below)}")
    return f"{what} {' and '.join(parts)}" if parts else f"{what} (any value)"


def _signal(s: Signal) -> str:
    name = f"`{s.metric}` (raw)" if s.raw else \
        f"`{s.metric}`<br>`{prometheus_name(metric(s.metric))}`"
    filters = [f"{k}={v}" for k, v in s.match] + [f"{k}!={v}" for k, v in s.exclude]
    if filters:
        name += "<br>" + ", ".join(f"`{f}`" for f in filters)
    return name


def _rule(rule: Rule) -> list[str]:
    lines = [f"### `{rule.id}`: {rule.verdict}", "",
             f"Severity **{rule.severity}**; topics {', '.join(sorted(rule.topics))}"
             + (f"; pattern: {rule.pattern}" if rule.pattern else "")
             + (f"; errors: {', '.join(sorted(rule.error_types))}" if rule.error_types else "")
             + (f"; transports: {', '.join(sorted(t or '(any)' for t in rule.transports))}"
                if rule.transports else "") + ".", "",
             rule.summary, "",
             "| role | signal | scope | by | condition |", "|---|---|---|---|---|"]
    for role, conditions in _ROLES:
        for c in conditions(rule):
            of = f" of {_signal(c.of)}" if c.of is not None else ""
            by = ", ".join(f"`{g}`" for g in c.signal.group_by) or "—"
            lines.append(f"| {role} | {_signal(c.signal)} | {c.signal.scope.value} | {by} | "
                         f"{_threshold(c)}{of} |")
    detail = DETAILS.get(rule.id)
    named = [f"**In diagnose.** {' '.join((detail.__doc__ or '').split())}", ""] if detail else []
    return [*lines, "", f"**Advice.** {rule.advice}", "", *named, f"*Source: {rule.source}.*",
            ""]


def playbooks_markdown(precision: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The rule tables, then the precision table of the recorded fault runs (by default
    the checkout's recording, precision_doc.py)."""
    precision = load_precision() if precision is None else precision
    lines = [
        "# Diagnosis playbooks",
        "",
        "Generated from `otel_netreceiver/diagnosis/rules.py` (node and correlation "
        "playbooks) and `otel_netreceiver/diagnosis/rules_cluster.py` (control plane and "
        "self-load) by `python -m otel_netreceiver.docsgen docs/`; do not edit by hand.",
        "",
        "A rule fires when one of its *any of* conditions holds for some evidence group, every "
        "*all of* condition holds, and no *none of* condition holds; *shown with* conditions "
        "are evidence only. Local mode (the agent's history, `otel-netreceiver diagnose`) "
        "reads the catalogue metrics and skips raw ones; remote mode (`diagnose --prometheus "
        "URL`) translates each condition to PromQL over the Prometheus names shown: increase "
        "and rate as `sum by (…) (increase(m[w]))`, ratio as the worst minute's quotient of "
        "two increases (`max_over_time` of a subquery; local mode takes the span in which the "
        "numerator moved), peak as `max_over_time`, "
        "level as `max by (…) (last_over_time(m[w]))`, growth of a gauge as `(m - m offset w) "
        "/ m offset w` (of a counter: its rate over the second half of the window against the "
        "first), quantiles as `histogram_quantile(q, sum by (le, …) (rate(m_bucket[w])))`. "
        "Scope pod adds `k8s_pod_uid`, host `netns_kind=\"host\"`; `--node` filters on "
        "`k8s_node_name` or `host_name`.",
        "",
        "*In diagnose* says what `diagnose` (local or remote, never an application's own "
        "question, which may not learn about other pods) adds to a rule's finding: the pods "
        "and numbers behind it, in its summary, its `related` pods and its evidence "
        "(`otel_netreceiver/diagnosis/talkers.py`).",
        "",
        "## Node and correlation playbooks (EKS network guide, ACK Net Exporter guide)",
        "",
    ]
    for rule in RULES:
        lines += _rule(rule)
    lines += ["## Cluster playbooks (EKS control-plane guide, node-load post-mortem; "
              "remote mode)", ""]
    for rule in CLUSTER_RULES:
        lines += _rule(rule)
    lines += precision_markdown(precision)
    return "\n".join(lines).rstrip("\n") + "\n"
