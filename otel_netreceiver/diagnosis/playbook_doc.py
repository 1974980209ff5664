"""docs/playbooks.md from the rule table: one section per rule, so the doc cannot drift."""

from __future__ import annotations

from otel_netreceiver.diagnosis.model import Condition, Rule


def _condition(c: Condition) -> str:
    match = ", ".join(f"{k}={v}" for k, v in c.signal.match)
    where = f"`{c.signal.metric}`" + (f" ({match})" if match else "")
    test = " and ".join(t for t in (f"> {c.above:g}" if c.above is not None else "",
                                    f"< {c.below:g}" if c.below is not None else "") if t)
    op = c.op.value + (f" q={c.q:g}" if c.op.value == "quantile" else "")
    of = f" of `{c.of.metric}`" if c.of is not None else ""
    return f"{op} of {where}{of} in scope {c.signal.scope.value} {test}".rstrip()


def rule_markdown(rule: Rule) -> list[str]:
    lines = [f"## `{rule.verdict}` ({rule.id}, {rule.severity})", ""]
    if rule.pattern:
        lines += [f"Pattern: {rule.pattern}.", ""]
    lines += [rule.summary, "", f"**What to do:** {rule.advice}", "",
              f"Source: {rule.seed}. Topics: {', '.join(sorted(rule.topics))}.", ""]
    lines += [f"- any of: {_condition(c)}" for c in rule.deciding()]
    lines += [f"- and all of: {_condition(c)}" for c in rule.required()]
    lines += [f"- evidence: {_condition(c)}" for c in rule.supporting()]
    return [*lines, ""]


def playbooks_markdown(rules: tuple[Rule, ...]) -> str:
    out = ["# Playbooks", "",
           "Generated from otel_netreceiver/diagnosis/rules.py (do not edit): every rule "
           "`otel-netreceiver diagnose` and the SDK's correlation answers run, in table order.",
           ""]
    for rule in rules:
        out += rule_markdown(rule)
    return "\n".join(out).rstrip() + "\n"
