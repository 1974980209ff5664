"""Probes as units: every table derived from the registered probes, the event record defined
once, and no probe named by the generic renderer, loader or collector."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from otel_netreceiver.bpf.probe import EventType, Probe
from otel_netreceiver.bpf.probes import (
    EVENT_NAMES,
    EVENT_PROBES,
    PROBE_OF,
    PROBES,
    REGISTERED,
    by_name,
    event_types,
)
from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.config.schema import BPF_PROBES, EVENT_TYPES, EbpfConfig
from otel_netreceiver.events.programs import EventSettings, events_header, render_events
from otel_netreceiver.events.record import FIELDS, RECORD, Field, c_struct

PACKAGE = Path(__file__).resolve().parents[2] / "otel_netreceiver"


def test_event_type_numbers_are_those_recorded_data_carry() -> None:
    """EV_<name> is the position: appending a probe must not renumber the existing types."""
    assert EVENT_NAMES == ("TCP_SEND_RST", "TCP_RECEIVE_RST", "PACKETLOSS", "NET_SOFTIRQ_SLOW",
                           "NETIF_TXLAT_SLOW", "TCP_RETRANS", "DNS_TIMEOUT", "DNS_LATE_ANSWER",
                           "DNS_SERVFAIL", "DNS_NXDOMAIN_BURST")
    assert EVENT_TYPES == EVENT_NAMES
    assert PROBE_OF == {"TCP_SEND_RST": "tcpreset", "TCP_RECEIVE_RST": "tcpreset",
                        "PACKETLOSS": "packetloss", "NET_SOFTIRQ_SLOW": "net_softirq",
                        "NETIF_TXLAT_SLOW": "netiftxlat", "TCP_RETRANS": "tcpretrans",
                        "DNS_TIMEOUT": "dns", "DNS_LATE_ANSWER": "dns", "DNS_SERVFAIL": "dns",
                        "DNS_NXDOMAIN_BURST": "dns"}


def test_config_catalogue_and_programs_come_from_the_registered_probes() -> None:
    assert tuple(p.name for p in REGISTERED) == BPF_PROBES
    assert set(EbpfConfig().probes) == {p.name for p in REGISTERED if p.default}
    assert set(EVENT_PROBES) == {p.name for p in REGISTERED if p.events}
    for probe in REGISTERED:
        for row in probe.metrics:
            assert CATALOGUE[row.name].source == "ebpf", row.name
            assert CATALOGUE[row.name].description == row.description
        for spec in filter(None, (probe.counting, probe.events)):
            assert spec.name == probe.name and spec.package.endswith(f".probes.{probe.name}")
            assert (PACKAGE / "bpf" / "probes" / probe.name / spec.source).is_file()
    assert all(PROBES[p.name] is p.counting for p in REGISTERED if p.counting)


def test_a_probe_or_event_type_registered_twice_is_refused() -> None:
    twice = (REGISTERED[0], REGISTERED[0])
    with pytest.raises(ValueError, match="registered twice"):
        by_name(twice)
    clash = Probe("other", None, None, (), False,
                  event_types=(EventType("PACKETLOSS", 9, "INFO", False),))
    with pytest.raises(ValueError, match="event types registered twice"):
        event_types((*REGISTERED, clash))


def test_the_generic_code_names_no_probe_and_no_event_type() -> None:
    """Per-probe behaviour lives in the probe's module, not in a name check elsewhere."""
    names = {p.name for p in REGISTERED} | set(EVENT_NAMES)
    for path in ("bpf/programs.py", "bpf/loader.py", "bpf/maps.py", "bpf/probe.py",
                 "bpf/compose_hooks.py", "bpf/socket_hooks.py",
                 "collectors/ebpf.py", "events/programs.py", "events/model.py",
                 "events/source.py"):
        text = (PACKAGE / path).read_text()
        found = {n for n in names if re.search(rf"[\"']{n}[\"']", text)}
        assert not found, f"{path} names {sorted(found)}"


def _offsets(fields: tuple[Field, ...]) -> dict[str, int]:
    out, offset = {}, 0
    for f in fields:
        out[f.c_name] = offset
        offset += f.size
    return out


def test_the_record_struct_and_its_decoder_come_from_one_table() -> None:
    text = c_struct()
    declared = re.findall(r"^    (\w+) (\w+)(?:\[(\d+)\])?;", text, re.M)
    assert [(t, n, int(k or 0)) for t, n, k in declared] == [
        (f.c_type, f.c_name, f.length) for f in FIELDS]
    # every C offset (natural alignment, no padding) is where struct.Struct reads the field
    prefix = "<"
    for f, (name, offset) in zip(FIELDS, _offsets(FIELDS).items(), strict=True):
        assert struct.calcsize(prefix) == offset, name
        prefix += f.code
    assert RECORD.size == sum(f.size for f in FIELDS) == 128
    header = events_header()
    assert text in header and "EV_RECORD_STRUCT" not in header


def test_a_field_the_compiler_would_pad_is_refused() -> None:
    bad = (Field("a", "u16", "a", ""), Field("b", "u64", "b", ""))
    with pytest.raises(ValueError, match="not aligned"):
        c_struct(bad)
    with pytest.raises(ValueError, match="not a multiple of 8"):
        c_struct((Field("a", "u32", "a", ""),))


def test_every_event_program_carries_the_generated_record() -> None:
    settings = EventSettings(EVENT_NAMES, 1, 1, 1, False)
    spec = EVENT_PROBES["net_softirq"]  # renders without tracepoint formats
    text = render_events(spec, {}, {"TIMING_SAMPLE": 1}, settings)
    assert c_struct() in text and "sizeof(*e)" in text
