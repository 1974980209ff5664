"""The distribution's promises: API-only dependencies, inert import, the entry point."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "otel_netreceiver_sdk"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_imports_are_stdlib_and_opentelemetry_api_only() -> None:
    for path in SRC.glob("*.py"):
        for name in _imports(path):
            top = name.partition(".")[0]
            assert top in sys.stdlib_module_names or top == "opentelemetry", (path, name)
            assert not name.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation")), \
                (path, name)
    requires = importlib.metadata.requires("otel-netreceiver-sdk") or []
    assert [r for r in requires if "extra ==" not in r] == ["opentelemetry-api>=1.27"]


def test_import_patches_nothing_and_starts_no_thread() -> None:
    code = ("import socket, threading, asyncio.selector_events as se\n"
            "before = (socket.getaddrinfo, socket.create_connection, dict(socket.socket.__dict__),"
            " se.BaseSelectorEventLoop.sock_connect)\n"
            "import otel_netreceiver_sdk\n"
            "after = (socket.getaddrinfo, socket.create_connection, dict(socket.socket.__dict__),"
            " se.BaseSelectorEventLoop.sock_connect)\n"
            "assert before == after, 'patched at import'\n"
            "assert threading.active_count() == 1, threading.enumerate()\n"
            "print('inert')\n")
    env = dict(os.environ, PYTHONPATH=str(SRC.parent))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.stdout.strip() == "inert", run.stderr


def test_opentelemetry_instrument_loads_it(short_dir) -> None:
    eps = importlib.metadata.entry_points(group="opentelemetry_instrumentor")
    (ep,) = [e for e in eps if e.name == "netreceiver"]
    assert ep.value == "otel_netreceiver_sdk:NetReceiverInstrumentor"
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    code = ("import socket; print(hasattr(socket.getaddrinfo, '__netreceiver_patch__'),"
            " 'connect' in socket.socket.__dict__)")
    env = dict(os.environ, OTEL_METRICS_EXPORTER="none", OTEL_TRACES_EXPORTER="none",
               OTEL_LOGS_EXPORTER="none",
               OTEL_NETRECEIVER_AGENT_SOCKET=str(short_dir / "absent.sock"))
    run = subprocess.run([str(launcher), sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, timeout=60)
    assert run.stdout.split() == ["True", "True"], run.stderr


def test_readme_documents_every_variable_and_the_downward_api() -> None:
    import re

    from otel_netreceiver_sdk.config import ENV_VARS
    from otel_netreceiver_sdk.identity import ENV_NAMES

    readme = (SRC.parents[1] / "README.md").read_text()
    for var in ENV_VARS:
        assert f"| `{var}` |" in readme, var
    manifest = readme.split("## Kubernetes", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    pairs = re.findall(r"- name: (K8S_\w+)\n\s+valueFrom: \{fieldRef: \{fieldPath: ([\w.]+)",
                       manifest)
    assert dict(pairs) == {"K8S_NODE_NAME": "spec.nodeName", "K8S_POD_NAME": "metadata.name",
                           "K8S_POD_NAMESPACE": "metadata.namespace",
                           "K8S_POD_UID": "metadata.uid", "K8S_HOST_IP": "status.hostIP"}
    assert set(dict(pairs)) == set(ENV_NAMES.values())
