"""The cluster playbooks, as one table: the control plane (EKS control-plane
guide) and self-load (node-load post-mortem).

Remote mode evaluates these after RULES (``diagnose --prometheus``). The control-plane
signals are ``raw``: the API server's and scheduler's own Prometheus metrics, scraped by
deploy/kubernetes/control-plane and named as in deploy/rules/control-plane/; local mode
cannot read them and skips them. The self-load rules read the agent's catalogue metrics.
Across API servers nothing is averaged (EKS control-plane guide): every latency and queue
signal keeps ``instance``, so the worst server decides and is named in the evidence.
"""

from __future__ import annotations

from otel_netreceiver.diagnosis.model import Condition, Op, Rule, Scope, Signal

CLUSTER = frozenset({"cluster"})
SYSTEM_LEVELS = ("system", "leader-election", "node-high")
# the API latency SLO (kubernetes/community sig-scalability): p99 <= 1 s for mutating and
# single-object calls, <= 30 s for LIST; WATCH and CONNECT are long-running by design
API_SLO_S, LIST_SLO_S, ETCD_SLOW_S = 1.0, 30.0, 0.5
ETCD_QUOTA = 8 * 1024**3  # EKS's etcd database quota; at it the cluster turns read-only
SERIES_GROWTH, WORKLOAD_GROWTH = 0.25, 0.10

REJECTED = "apiserver_flowcontrol_rejected_requests_total"
INQUEUE = "apiserver_flowcontrol_current_inqueue_requests"
API_LATENCY = "apiserver_request_duration_seconds"
ETCD_LATENCY = "etcd_request_duration_seconds"


def _raw(name: str, group_by: tuple[str, ...] = (), match: tuple[tuple[str, str], ...] = (),
         exclude: tuple[tuple[str, str], ...] = ()) -> Signal:
    return Signal(name, Scope.ALL, match, group_by, raw=True, exclude=exclude)


def _level(signal: Signal, above: float | None = None, below: float | None = None) -> Condition:
    return Condition(signal, Op.LEVEL, above, below)


# seats per priority level, shown beside a rejection or a queue (Kubernetes 1.30+ names it
# nominal_limit_seats; older API servers request_concurrency_limit)
SEATS = (_level(_raw("apiserver_flowcontrol_nominal_limit_seats", ("priority_level",))),
         _level(_raw("apiserver_flowcontrol_request_concurrency_limit", ("priority_level",))))
API_SLOW = (
    Condition(_raw(API_LATENCY, ("verb", "resource", "instance"),
                   exclude=(("verb", "WATCH"), ("verb", "CONNECT"), ("verb", "LIST"))),
              Op.QUANTILE, API_SLO_S, q=0.99),
    Condition(_raw(API_LATENCY, ("resource", "instance"), (("verb", "LIST"),)),
              Op.QUANTILE, LIST_SLO_S, q=0.99),
)
ETCD_SLOW = Condition(_raw(ETCD_LATENCY, ("operation", "type", "instance")), Op.QUANTILE,
                      ETCD_SLOW_S, q=0.99)
# etcd's p99 whatever it is: "etcd is normal" needs etcd's latency to be there at all
ETCD_SEEN = Condition(ETCD_SLOW.signal, Op.QUANTILE, None, q=0.99)
DB_SIZE = (_raw("apiserver_storage_size_bytes", ("instance",)),
           _raw("etcd_mvcc_db_total_size_in_bytes", ("instance",)))
WORKLOAD_GREW = (Condition(Signal("netreceiver.k8s.pods", Scope.NODE), Op.GROWTH, WORKLOAD_GROWTH),
                 Condition(Signal("netreceiver.netns.count", Scope.NODE), Op.GROWTH,
                           WORKLOAD_GROWTH))

CLUSTER_RULES: tuple[Rule, ...] = (
    Rule("cp.apf_rejected_system", "apf_rejecting_system_requests", "critical", CLUSTER,
         tuple(_raw(REJECTED, ("flow_schema", "reason"), (("priority_level", level),))
               for level in SYSTEM_LEVELS),
         "API Priority and Fairness rejected requests (HTTP 429) at a system priority level: "
         "leader election, kubelets or system controllers were throttled, so the cluster "
         "itself degrades.",
         "Find the clients crowding the API server (audit log userAgent, CloudWatch Logs "
         "Insights); move seats from an under-used level to the saturated one rather than "
         "adding queues (EKS has 600 seats in all).",
         "EKS control-plane guide: APF, apiserver_flowcontrol_rejected_requests_total is non-zero "
         "when a "
         "bucket exceeds its concurrency",
         also=SEATS),
    Rule("cp.apf_rejected", "apf_rejecting_requests", "warning", CLUSTER,
         (_raw(REJECTED, ("priority_level", "flow_schema", "reason"),
               exclude=tuple(("priority_level", level) for level in (*SYSTEM_LEVELS, "exempt"))),),
         "API Priority and Fairness rejected requests (HTTP 429) of a priority level whose "
         "seats and queues were full.",
         "Find the client of that flow schema (audit log userAgent) and slow it down, or take "
         "seats from an under-used priority level and give them to this one.",
         "EKS control-plane guide: APF, apiserver_flowcontrol_rejected_requests_total",
         also=SEATS),
    Rule("cp.apf_queueing", "apf_requests_queued", "warning", CLUSTER,
         (_level(_raw(INQUEUE, ("priority_level", "instance")), above=0.0),),
         "Requests were waiting in API Priority and Fairness queues at the end of the window: "
         "the priority level's seats were saturated and queueing itself adds latency.",
         "Do not deepen the queues (a common mistake that only adds latency); rebalance seats "
         "between priority levels and find the clients filling this level.",
         "EKS control-plane guide: APF, increasing queue depth adds latency; "
         "apiserver_flowcontrol_current_inqueue_requests",
         also=(*SEATS, _level(_raw("apiserver_flowcontrol_current_executing_seats",
                                   ("priority_level", "instance"))))),
    Rule("cp.api_latency_etcd", "api_latency_from_etcd", "warning", CLUSTER, API_SLOW,
         "API server p99 latency was beyond the SLO (1 s, 30 s for LIST) on at least one API "
         "server, and etcd was slow too (p99 above 0.5 s): most of the API latency is etcd's.",
         "Look at etcd, not the API server: defragmentation (CloudWatch Logs Insights on the "
         "etcd logs), large objects and the number of objects (apiserver_storage_objects), "
         "expensive LISTs that read the whole keyspace.",
         "EKS control-plane guide: API vs etcd latency (if etcd takes 15 s of the API server's 20 "
         "s, the "
         "latency is etcd's)",
         all_of=(ETCD_SLOW,)),
    Rule("cp.api_latency", "api_latency_in_apiserver", "warning", CLUSTER, API_SLOW,
         "API server p99 latency was beyond the SLO (1 s, 30 s for LIST) on at least one API "
         "server while etcd answered normally (p99 at most 0.5 s): the time is spent in the "
         "API server itself (APF queueing, admission webhooks, large responses).",
         "Find the slowest calls and their clients (audit log: requestURI and userAgent by "
         "latency), check APF queueing, and paginate large LISTs.",
         "EKS control-plane guide: API vs etcd latency; control plane vs client problems",
         all_of=(ETCD_SEEN,), none_of=(ETCD_SLOW,)),
    Rule("cp.scheduler_backlog", "scheduler_backlog", "warning", CLUSTER,
         (_level(_raw("scheduler_pending_pods", match=(("queue", "unschedulable"),)), 0.0),
          _level(_raw("scheduler_pending_pods", match=(("queue", "active"),)), 100.0)),
         "The scheduler had pods it could not place (unschedulable queue), or a deep active "
         "queue: pods wait before they start.",
         "Read the scheduler's log for 'Unable to schedule pod' (CloudWatch Logs Insights: "
         "count by pod and err): missing capacity, unavailable PVCs, taints or affinity.",
         "EKS control-plane guide: scheduler, max without(instance)(scheduler_pending_pods)"),
    Rule("cp.etcd_db_near_quota", "etcd_database_near_quota", "critical", CLUSTER,
         tuple(_level(s, 0.9 * ETCD_QUOTA) for s in DB_SIZE),
         "The etcd database is above 90% of its 8 GiB quota: at the quota the cluster stops "
         "accepting writes.",
         "Delete objects now (finished Jobs and their pods, events, old ReplicaSets, unused "
         "custom resources); contact AWS support if compaction does not reclaim space.",
         "EKS control-plane guide: etcd database size (apiserver_storage_size_bytes)"),
    Rule("cp.etcd_db_large", "etcd_database_large", "warning", CLUSTER,
         tuple(_level(s, 0.8 * ETCD_QUOTA, 0.9 * ETCD_QUOTA) for s in DB_SIZE),
         "The etcd database is above 80% of its 8 GiB quota.",
         "Reduce the number of objects: revisionHistoryLimit of Deployments, TTL on finished "
         "Jobs, fewer events and custom resources.",
         "EKS control-plane guide: etcd database size (apiserver_storage_size_bytes)"),
    Rule("self.agent_growth", "agent_output_growing", "warning", CLUSTER,
         (Condition(Signal("netreceiver.series.exported", Scope.NODE), Op.GROWTH, SERIES_GROWTH),
          Condition(Signal("netreceiver.export.bytes", Scope.NODE), Op.GROWTH, SERIES_GROWTH)),
         "The agent's own output (series exported, or bytes per second) grew steadily over "
         "the window while the node's pods and network namespaces did not: series of gone "
         "pods are not being retired.",
         "Compare netreceiver.series.exported by instrument with the pod count; check the "
         "cardinality caps (netreceiver.series.dropped) and that the agent retires series of "
         "deleted pods within a cycle; restart it as a stop-gap.",
         "Node-load post-mortem: node load growing day after day, traced to a monitoring agent "
         "whose "
         "output grew with every finished pod",
         none_of=WORKLOAD_GREW),
    Rule("self.scrape_target_growth", "scrape_target_growing", "warning", CLUSTER,
         (Condition(_raw("scrape_samples_scraped", ("job", "instance")), Op.GROWTH,
                    SERIES_GROWTH),),
         "A scrape target's sample count grew steadily over the window while the cluster's "
         "pods did not: an exporter keeps series of things that are gone.",
         "Look at that target's metrics for series of finished pods or containers (cAdvisor, "
         "kube-state-metrics, a custom exporter), fix its retention or drop the labels at "
         "scrape time (metric_relabel_configs).",
         "Node-load post-mortem: a monitoring agent whose output grew with every finished pod",
         none_of=WORKLOAD_GREW[:1]),
)
