"""Network interfaces of the agent's namespace, from sysfs (``<sys_root>/class/net``)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    name: str
    ifindex: int
    mac: str


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def list_interfaces(sys_root: str) -> list[InterfaceInfo]:
    """Every interface sysfs shows; one that vanishes while being read is skipped."""
    base = Path(sys_root, "class", "net")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    result = []
    for name in names:
        index = _read(base / name / "ifindex")
        if index.isdigit():
            result.append(InterfaceInfo(name, int(index), _read(base / name / "address").lower()))
    return result


def matches(name: str, include: Iterable[str], exclude: Iterable[str] = ()) -> bool:
    """Glob filter: included by some pattern (or no patterns) and excluded by none."""
    patterns = list(include)
    if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in exclude)
