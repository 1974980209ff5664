"""Run as ``python bench/X.py`` from a checkout, a benchmark can import what it shares with the
tests (``tests.support``: test pods, sinks) and the other benchmarks (``bench.X``): this puts
the checkout's root on ``sys.path``, so no ``PYTHONPATH=.`` is needed. Benchmarks only; the
package itself never imports from tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
