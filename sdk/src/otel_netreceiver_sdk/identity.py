"""The pod's Kubernetes identity, from the Downward API environment (sdk/README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ENV_NAMES = {
    "node_name": "K8S_NODE_NAME",
    "pod_name": "K8S_POD_NAME",
    "namespace": "K8S_POD_NAMESPACE",
    "pod_uid": "K8S_POD_UID",
    "host_ip": "K8S_HOST_IP",
}


@dataclass(frozen=True, slots=True)
class K8sIdentity:
    """Who this process is; empty strings where the manifest did not pass a field."""

    node_name: str = ""
    pod_name: str = ""
    namespace: str = ""
    pod_uid: str = ""
    host_ip: str = ""

    def attributes(self) -> dict[str, str]:
        """Semantic-convention attribute names, only for the fields that are known."""
        pairs = (("k8s.node.name", self.node_name), ("k8s.pod.name", self.pod_name),
                 ("k8s.namespace.name", self.namespace), ("k8s.pod.uid", self.pod_uid))
        return {key: value for key, value in pairs if value}


def identity_from_env(env: Mapping[str, str]) -> K8sIdentity:
    """Read the Downward API variables (pure: pass os.environ or a test mapping)."""
    return K8sIdentity(**{field: env.get(var, "").strip() for field, var in ENV_NAMES.items()})
