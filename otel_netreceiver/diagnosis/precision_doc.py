"""The precision table of docs/playbooks.md: for every fault injected on real kernel objects,
the findings expected and the findings produced, and what a clean run produced (pure).

Its input is what tests/integration/test_diagnosis_faults.py records with
``ONR_WRITE_PRECISION=1`` (tests/data/diagnosis_precision.json), so the table shows a real
run, not a claim; the docs test fails when the table and the recording disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RECORDING = Path(__file__).resolve().parents[2] / "tests" / "data" / "diagnosis_precision.json"


def load(path: Path = RECORDING) -> dict[str, Any]:
    """The recorded rows, or nothing outside a checkout (an installed package has no tests)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _cell(verdicts: list[str] | None) -> str:
    return ", ".join(f"`{v}`" for v in verdicts or ()) or "—"


def _pod_rows(fault: str, row: Mapping[str, Any]) -> list[str]:
    pods = sorted(set(row.get("produced", {})) | set(row.get("expected", {})))
    out = []
    for pod in pods:
        expected = row.get("expected", {}).get(pod, [])
        produced = row.get("produced", {}).get(pod, [])
        forbidden = row.get("absent", {}).get(pod, [])
        wrong = sorted(set(forbidden) & set(produced))
        missing = sorted(set(expected) - set(produced))
        clean = row.get("clean", {}).get(pod)
        verdict = ("wrong: " + _cell(wrong) if wrong else "missed: " + _cell(missing)
                   if missing else "findings on the clean run" if clean else "right")
        out.append(f"| {fault} | {pod} | {_cell(expected)} | {_cell(produced)} | "
                   f"{_cell(forbidden)} | {_cell(clean)} | {verdict} |")
    return out


def precision_markdown(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "## Precision on injected faults",
        "",
        "Each fault was made on real kernel objects by tests/integration/test_diagnosis_faults.py "
        "(a relay in a wire namespace for delay, reordering and loss; a backlog-1 listener; a "
        "1280-byte hop with ICMP frag-needed dropped; an nftables reject-with-reset), each after "
        "a clean run of the same traffic, and proved in the kernel's own counters first. "
        "*Expected* is what the test requires on the pod; *forbidden* the wrong explanations "
        "it fails on; *clean run* what `diagnose` said before the fault (it must be nothing). "
        "Findings beyond the expected ones are listed as produced: they are consequences the "
        "kernel also counted (resets after timeouts, drops of late segments).",
        "",
        "| fault | pod | expected | produced under the fault | forbidden | clean run | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for fault, row in rows.items():
        lines += _pod_rows(fault, row)
    return [*lines, ""]
