"""Per-pod kernel network counters (the ACK Net Exporter / KubeSkoop metric set)."""
