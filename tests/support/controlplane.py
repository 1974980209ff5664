"""The Kubernetes control-plane metrics deploy/ may read (the documented allow-list).

deploy/kubernetes/control-plane scrapes them; deploy/rules/control-plane/ and
deploy/grafana/control-plane.json read them. Anything else a rule or dashboard reads must be
in the agent's catalogue.
"""

from __future__ import annotations

# Kubernetes control-plane metrics (kube-apiserver and kube-scheduler /metrics, documented in
# the Kubernetes metrics reference), plus "up" from the scrape itself.
CONTROL_PLANE_METRICS = frozenset({
    "apiserver_request_duration_seconds_bucket",
    "apiserver_request_total",
    "apiserver_flowcontrol_rejected_requests_total",
    "apiserver_flowcontrol_current_inqueue_requests",
    "apiserver_flowcontrol_current_executing_seats",
    "apiserver_flowcontrol_nominal_limit_seats",
    "apiserver_flowcontrol_request_concurrency_limit",
    "apiserver_flowcontrol_request_wait_duration_seconds_bucket",
    "etcd_request_duration_seconds_bucket",
    "apiserver_storage_size_bytes",
    "apiserver_storage_objects",
    "scheduler_pending_pods",
    "up",
})
