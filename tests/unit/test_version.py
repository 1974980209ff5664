"""The version lives in one place per distribution, the two agree, and CHANGELOG.md has it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _version(init: Path) -> str:
    """``__version__`` as written in the package (read, not imported: the SDK installed
    in a venv may be another checkout's)."""
    found = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.MULTILINE)
    assert found, f"{init}: no __version__"
    return found.group(1)


def test_both_distributions_read_their_version_from_the_package():
    for pyproject, attr in ((REPO / "pyproject.toml", "otel_netreceiver.__version__"),
                            (REPO / "sdk" / "pyproject.toml", "otel_netreceiver_sdk.__version__")):
        data = tomllib.loads(pyproject.read_text())
        assert "version" not in data["project"], f"{pyproject}: a second place for the version"
        assert data["project"]["dynamic"] == ["version"]
        assert data["tool"]["setuptools"]["dynamic"]["version"] == {"attr": attr}


def test_the_agent_and_the_sdk_share_a_version_that_the_changelog_lists():
    version = _version(REPO / "otel_netreceiver" / "__init__.py")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert _version(REPO / "sdk" / "src" / "otel_netreceiver_sdk" / "__init__.py") == version
    headings = re.findall(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert version in headings
