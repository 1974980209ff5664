"""Resource attributes of the agent, following the semantic conventions.

``service.instance.id`` is the node name: one agent per node, and it is what
ADOT turns into the ``instance`` label. Precedence (lowest first): detected
values, IMDS, then the user's ``resource_attributes`` / OTEL_RESOURCE_ATTRIBUTES.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from otel_netreceiver import __version__
from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.schema import AgentConfig


def node_name(config: AgentConfig, env: Mapping[str, str]) -> str:
    return (config.node_name or env.get("K8S_NODE_NAME") or env.get("NODE_NAME")
            or socket.gethostname())


def build_resource(config: AgentConfig, env: Mapping[str, str],
                   metadata: InstanceMetadata) -> dict[str, str]:
    node = node_name(config, env)
    resource = {
        "service.name": config.service_name,
        "service.version": __version__,
        "service.instance.id": node,
        "host.name": socket.gethostname(),
        "os.type": "linux",
    }
    if env.get("K8S_NODE_NAME") or env.get("NODE_NAME") or env.get("KUBERNETES_SERVICE_HOST"):
        resource["k8s.node.name"] = node
    resource.update(metadata.resource_attributes())
    resource.update(config.resource_attributes)
    return resource
