"""Traffic by peer class and zone: who a pod talks to, classed in the kernel by one map lookup."""
