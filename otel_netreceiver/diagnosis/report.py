"""Findings as text for a terminal (``otel-netreceiver diagnose``); pure."""

from __future__ import annotations

from typing import Any


def _attrs(attributes: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(attributes.items())) + "}" \
        if attributes else ""


def _evidence(item: dict[str, Any]) -> str:
    where = item.get("scope", "")
    amount = f"{item['op']} = {item['value']:.6g}" if "value" in item else f"+{item['delta']:.6g}"
    return (f"{item['signal']}{_attrs(item.get('attributes', {}))} {amount} over "
            f"{item['window_seconds']:.1f} s ({where})")


def _subject(finding: dict[str, Any]) -> str:
    pod = finding.get("pod")
    if not pod:
        return "node"
    name = pod.get("k8s.pod.name") or pod.get("k8s.pod.uid", "?")
    namespace = pod.get("k8s.namespace.name")
    return f"pod {namespace}/{name}" if namespace else f"pod {name}"


def format_report(doc: dict[str, Any]) -> list[str]:
    findings = doc.get("findings", [])
    head = (f"node {doc.get('node', '?')}, last {doc.get('window', {}).get('seconds', 0):.0f} s: "
            f"{len(findings) or 'no'} finding{'s' if len(findings) != 1 else ''}")
    lines = [head]
    for f in findings:
        lines.append(f"{f['severity'].upper():8} {f['verdict']} ({f['rule']}) {_subject(f)}")
        lines.append(f"  {f['summary']}")
        lines += [f"  evidence: {_evidence(e)}" for e in f.get("evidence", [])]
        lines.append(f"  advice: {f['advice']}")
    return lines
