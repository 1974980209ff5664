"""Behaviour is chosen by what a collector declares, not by its name."""

from __future__ import annotations

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.base import DEFAULT_TRAITS, Traits, traits_of
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.collectors.ena import EnaCollector
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Collection, Point, attrs

S = 1_000_000_000
RESETS = metric("netreceiver.pod.tcp.resets")
POD = attrs({"k8s.pod.uid": "a", "netns.kind": "pod", "tcp.reset.direction": "received"})


class _Named:
    def __init__(self, name: str, traits: object = None) -> None:
        self.name = name
        if traits is not None:
            self.traits = traits


def test_declared_traits_of_the_kernel_collectors() -> None:
    assert traits_of(EbpfCollector) == Traits(refreshed=True, event_timed=True,
                                              born_at_zero=True)
    assert traits_of(EnaCollector) == Traits(refreshed=True)


def test_a_collector_without_traits_or_with_a_wrong_value_gets_the_defaults() -> None:
    assert traits_of(_Named("ebpf")) is DEFAULT_TRAITS  # the name alone means nothing
    assert traits_of(_Named("x", traits={"refreshed": True})) is DEFAULT_TRAITS


def _increase(h: History) -> float:
    return sum(w.delta for w in h.increases(RESETS.name, lambda a: True, 5 * S, 25 * S))


def _two_reads(h: History) -> None:
    h.update(Collection.of("probes", (), 10 * S))
    h.update(Collection.of("probes", (Point(RESETS, POD, 3),), 20 * S))


def test_history_counts_from_zero_only_for_collectors_named_born_at_zero() -> None:
    undeclared = History(60.0, {RESETS.name})
    _two_reads(undeclared)
    assert _increase(undeclared) == 0  # first observation is the baseline
    declared = History(60.0, {RESETS.name})
    declared.born_at_zero({"probes"})
    _two_reads(declared)
    assert _increase(declared) == 3
