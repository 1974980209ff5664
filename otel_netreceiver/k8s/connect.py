"""Where the Kubernetes API is: in-cluster service account, a kubeconfig, or nowhere.

Off Kubernetes (no service account, no kubeconfig) the agent runs without pod
names: namespaces are identified by pod UID (from cgroups), inode and command.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from otel_netreceiver.config.schema import KubernetesConfig

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def api_factory(config: KubernetesConfig,
                env: Mapping[str, str]) -> tuple[Callable[[], Any] | None, str]:
    """A function building a CoreV1Api, or None, and a status line saying which and why."""
    if config.enabled is False:
        return None, "disabled in configuration (kubernetes.enabled: false)"
    in_cluster = bool(env.get("KUBERNETES_SERVICE_HOST")) and SERVICE_ACCOUNT.exists()
    kubeconfig = config.kubeconfig or env.get("KUBECONFIG", "") or str(
        Path(env.get("HOME", "/root")) / ".kube" / "config")
    if not in_cluster and not os.path.isfile(kubeconfig):
        if config.enabled:
            return None, f"enabled, but no in-cluster service account and no kubeconfig at " \
                         f"{kubeconfig}"
        return None, "not on Kubernetes (no service account, no kubeconfig): pods are named " \
                     "by UID and namespace inode"
    from kubernetes import client
    from kubernetes import config as kube_config

    configuration = client.Configuration()
    if in_cluster:
        kube_config.load_incluster_config(client_configuration=configuration)
        where = "in-cluster service account"
    else:
        kube_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        where = f"kubeconfig {kubeconfig}"
    return (lambda: client.CoreV1Api(client.ApiClient(configuration))), \
        f"{where}, API server {configuration.host}"
