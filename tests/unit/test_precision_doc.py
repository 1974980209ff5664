"""The precision table says, per pod of each injected fault, whether diagnose was right."""

from __future__ import annotations

from otel_netreceiver.diagnosis.precision_doc import load, precision_markdown

ROW = {"expected": {"client": ["tcp_packet_loss"], "server": ["listen_overflow"]},
       "produced": {"client": ["tcp_timeouts"], "server": ["listen_overflow", "resets_sent"],
                    "other": ["tcp_packet_loss"]},
       "absent": {"other": ["tcp_packet_loss"]},
       "clean": {"server": ["path_delay_or_reordering"]}}


def test_each_pod_is_judged() -> None:
    lines = precision_markdown({"a fault": ROW})
    by_pod = {line.split(" | ")[1]: line for line in lines if line.startswith("| a fault")}
    assert by_pod["client"].endswith("| missed: `tcp_packet_loss` |")
    assert by_pod["other"].endswith("| wrong: `tcp_packet_loss` |")
    assert by_pod["server"].endswith("| findings on the clean run |")


def test_no_recording_no_table(tmp_path) -> None:
    assert precision_markdown(load(tmp_path / "missing.json")) == []
