"""Resource attributes of the agent, following the semantic conventions.

``service.instance.id`` is the node name: one agent per node, and it is what
ADOT turns into the ``instance`` label. Layers are merged with the OpenTelemetry
SDK's ``Resource.merge`` (the updating resource wins), lowest first: detected
values, IMDS, Kubernetes, the user's ``resource_attributes`` /
OTEL_RESOURCE_ATTRIBUTES, then ``service_name`` / OTEL_SERVICE_NAME when the user
gave it. The last step is the SDK environment specification's rule: OTEL_SERVICE_NAME
takes precedence over a ``service.name`` inside OTEL_RESOURCE_ATTRIBUTES, as the SDK's
own environment detector does. The environment is passed in (not read from
``os.environ``), so the same rule is testable and the agent's config reload sees it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource

from otel_netreceiver import __version__
from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.schema import AgentConfig


def node_name(config: AgentConfig, env: Mapping[str, str]) -> str:
    return (config.node_name or env.get("K8S_NODE_NAME") or env.get("NODE_NAME")
            or socket.gethostname())


def _service_name_given(env: Mapping[str, str], explicit: frozenset[str]) -> bool:
    """Whether service_name is the user's (file key or OTEL_SERVICE_NAME), not the default."""
    return "service_name" in explicit or bool(env.get("OTEL_SERVICE_NAME", "").strip())


def build_resource(config: AgentConfig, env: Mapping[str, str], metadata: InstanceMetadata,
                   explicit: frozenset[str] = frozenset()) -> dict[str, str]:
    """The merged resource; ``explicit`` is the set of dotted keys the config file set."""
    node = node_name(config, env)
    detected = Resource({"service.name": config.service_name, "service.version": __version__,
                         "service.instance.id": node, "host.name": socket.gethostname(),
                         "os.type": "linux"})
    k8s = {}
    if env.get("K8S_NODE_NAME") or env.get("NODE_NAME") or env.get("KUBERNETES_SERVICE_HOST"):
        k8s["k8s.node.name"] = node
    merged = (detected.merge(Resource(metadata.resource_attributes()))
              .merge(Resource(k8s)).merge(Resource(dict(config.resource_attributes))))
    if _service_name_given(env, explicit):
        merged = merged.merge(Resource({"service.name": config.service_name}))
    return {k: str(v) for k, v in merged.attributes.items()}
