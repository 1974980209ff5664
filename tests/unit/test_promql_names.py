"""The PromQL name finder the deploy checks rely on."""

from __future__ import annotations

import pytest

from tests.support.promql import metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('rate(node_net_ethtool{device="eth0",type="pps_allowance_exceeded"} [30s]) > 0',
         {"node_net_ethtool"}),
        ("sum by (network_interface_name, service_instance_id) "
         "(increase(aws_ena_allowance_exceeded_total{aws_ena_allowance=\"linklocal\"}[1m])) > 0",
         {"aws_ena_allowance_exceeded_total"}),
        ("histogram_quantile(0.99, sum without (cpu) (rate(x_seconds_bucket[5m])))",
         {"x_seconds_bucket"}),
        ("a_total / on (pod) group_left (node) b_info offset 5m and c", {"a_total", "b_info", "c"}),
        ("aws_ena_conntrack_allowance_available < 1e4", {"aws_ena_conntrack_allowance_available"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
