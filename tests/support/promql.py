"""Find the metric names a PromQL expression selects (enough PromQL for rules and dashboards).

promtool checks the syntax; this only answers "which series does it read",
so tests can check every name against the catalogue.
"""

from __future__ import annotations

import re

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\b(offset|@)\s*-?[\w.]+")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
             "unless", "offset", "inf", "nan", "e"}


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _LABEL_LISTS.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word, end = match.group(), match.end()
        rest = text[end:].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if word.lower() in _KEYWORDS or text[match.start() - 1: match.start()].isdigit():
            continue
        names.add(word)
    return names
