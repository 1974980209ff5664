"""Generated docs match the code they are generated from."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.docsgen import GENERATED

DOCS = Path(__file__).parent.parent.parent / "docs"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_doc_is_current(name: str) -> None:
    expected = GENERATED[name]()
    actual = (DOCS / name).read_text(encoding="utf-8")
    assert actual == expected, f"docs/{name} is stale: run python -m otel_netreceiver.docsgen docs/"
