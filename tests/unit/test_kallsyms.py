"""The compact kallsyms table: parsing, ordering, aliases, lookups, one shared read."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from otel_netreceiver.bpf.kallsyms import Kallsyms, KernelSymbols, parse_kallsyms

TEXT = """\
ffffffff81000000 T _stext
ffffffff81000100 t helper_b
ffffffff81000100 t helper_a
ffffffff81000200 D some_data
0000000000000000 T hidden_by_kptr_restrict
not-an-address T broken
ffffffffc0001000 t mod_func\t[veth]
ffffffff81000300 W weak_one
ffffffff81000400
"""


def test_lookup_names_the_nearest_text_symbol_at_or_below() -> None:
    table = parse_kallsyms(TEXT)
    assert table.name(0xFFFFFFFF81000000) == "_stext"
    assert table.name(0xFFFFFFFF810000FF) == "_stext"
    assert table.name(0xFFFFFFFF81000250) == "helper_b"  # data symbols are not functions
    assert table.name(0xFFFFFFFF81000310) == "weak_one"
    assert table.name(0xFFFFFFFFC0001008) == "mod_func"  # module after, sorted in


def test_aliases_keep_the_last_name_in_name_order_and_count_once() -> None:
    table = parse_kallsyms(TEXT)
    assert table.name(0xFFFFFFFF81000100) == "helper_b"
    assert len(table) == 4  # _stext, helper (one entry), weak_one, mod_func


def test_below_the_first_symbol_and_zero_are_unknown() -> None:
    table = parse_kallsyms(TEXT)
    assert table.name(0) == "unknown"
    assert table.name(0xFFFFFFFF80FFFFFF) == "unknown"


def test_restricted_kallsyms_is_an_unusable_table_not_an_error() -> None:
    table = parse_kallsyms("0000000000000000 T a\n0000000000000000 t b\n")
    assert not table.usable
    assert table.name(0xFFFFFFFF81000000) == "unknown"


def test_a_table_whose_parts_do_not_line_up_is_refused() -> None:
    from array import array

    with pytest.raises(ValueError, match="does not line up"):
        Kallsyms(array("Q", [1, 2]), b"ab", array("I", [1]))


def test_the_table_is_a_few_bytes_per_symbol() -> None:
    lines = "".join(f"{0xFFFFFFFF81000000 + 16 * i:016x} t function_{i}\n"
                    for i in range(10000))
    table = parse_kallsyms(lines)
    assert len(table) == 10000
    assert table.name(0xFFFFFFFF81000000 + 16 * 5000 + 3) == "function_5000"
    assert table.nbytes() < 10000 * (8 + 4 + len("function_10000"))


def test_kernel_symbols_reads_the_file_under_proc_root_once(tmp_path: Path) -> None:
    (tmp_path / "kallsyms").write_text(TEXT)
    symbols = KernelSymbols(str(tmp_path))
    assert symbols.name(0xFFFFFFFF81000001) == "_stext"
    (tmp_path / "kallsyms").write_text("ffffffff81000000 T renamed\n")
    assert symbols.name(0xFFFFFFFF81000001) == "_stext"  # the first read is kept
    assert symbols.table() is symbols.table()


def _anonymous_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_reading_the_table_keeps_the_table_not_what_parsing_freed(tmp_path: Path) -> None:
    """A 200k-symbol kallsyms (6.18's size, shuffled as modules are) frees ~25 MB of parse
    temporaries that glibc would keep; only the compact table stays resident."""
    rng = random.Random(7)
    lines = [f"{0xFFFFFFFF81000000 + 64 * i:016x} t function_{i:06d}_{rng.randrange(10**6)}\n"
             for i in range(200_000)]
    rng.shuffle(lines)
    (tmp_path / "kallsyms").write_text("".join(lines))
    del lines
    before = _anonymous_bytes()
    table = KernelSymbols(str(tmp_path)).table()
    grown = _anonymous_bytes() - before
    assert len(table) == 200_000
    assert grown < table.nbytes() + 10 * 2**20, (grown, table.nbytes())


def test_kernel_symbols_without_a_kallsyms_file_names_nothing(tmp_path: Path) -> None:
    assert KernelSymbols(str(tmp_path)).name(0xFFFFFFFF81000001) == "unknown"


def test_the_agents_counting_and_event_collectors_share_one_table() -> None:
    from dataclasses import replace

    from otel_netreceiver.cloud.imds import InstanceMetadata
    from otel_netreceiver.collectors.registry import BuildContext, build_collectors
    from otel_netreceiver.config.schema import AgentConfig, EbpfConfig

    base = AgentConfig()
    off = {name: replace(getattr(base.collectors, name), enabled=False)
           for name in ("ena", "ethtool", "netdev", "podnet", "nodenet")}
    config = replace(base, collectors=replace(base.collectors, **off,
                                              ebpf=EbpfConfig(use_bcc=False)),
                     exporters=replace(base.exporters, otlp=replace(
                         base.exporters.otlp, endpoint="http://127.0.0.1:9")))
    built, _ = build_collectors(config, BuildContext("/proc", "/sys", InstanceMetadata()))
    try:
        by_name = {c.name: c for c in built}
        assert set(by_name) == {"ebpf", "events"}
        assert by_name["ebpf"]._symbols is by_name["events"]._source._symbols  # type: ignore
    finally:
        for collector in built:
            collector.close()
