"""Reading ``GET /v1/top`` from the agent on this node, over its Unix socket.

The socket is how the agent tells callers apart (SO_PEERCRED, nodeapi/callers.py): only
root on the node and the agent's own pod may see every pod's rates, so ``top`` never
uses the TCP listener, which any pod can reach.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from otel_netreceiver.nodeapi.unix_http import UnixConnection

DEFAULT_SOCKET = "/run/otel-netreceiver/api.sock"
START_HINT = ("start one with `sudo otel-netreceiver run -c CONFIG` where CONFIG sets "
              "correlation.socket (e.g. /run/otel-netreceiver/api.sock), or give the running "
              "agent's socket with --socket; in a cluster, `kubectl exec` into the agent's pod "
              "on the node and run `otel-netreceiver top` there")


class AgentUnavailable(Exception):
    """No agent answered at the socket, or it refused: ``reason`` says which and why in
    one line (the live view's banner); the message adds how to start one."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(f"{reason}; {hint}" if hint else reason)
        self.reason = reason




def fetch(socket_path: str, timeout: float = 5.0) -> dict[str, Any]:
    """The agent's top document; AgentUnavailable with a readable reason otherwise."""
    conn = UnixConnection(socket_path, timeout)
    try:
        conn.request("GET", "/v1/top")
        response = conn.getresponse()
        raw = response.read()
    except FileNotFoundError:
        raise AgentUnavailable(f"no agent is running here: {socket_path} does not exist",
                               START_HINT) from None
    except ConnectionRefusedError:
        raise AgentUnavailable(f"no agent listens on {socket_path} (left over from a "
                               "stopped agent)", START_HINT) from None
    except (OSError, http.client.HTTPException) as exc:
        raise AgentUnavailable(f"the agent at {socket_path} did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise AgentUnavailable(f"the agent at {socket_path} answered {response.status} "
                               "with a body that is not JSON") from None
    if response.status != 200:
        raise AgentUnavailable(f"the agent at {socket_path} answered {response.status}: "
                               f"{body.get('error', '')}")
    return body
