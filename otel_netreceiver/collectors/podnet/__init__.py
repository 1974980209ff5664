"""Per-pod kernel network counters (seed 002's ACK Net Exporter / KubeSkoop metric set)."""
