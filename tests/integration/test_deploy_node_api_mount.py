"""The DaemonSet's node API socket through an application pod's read-only mount, on the real kernel.

docs/deploy.md tells application pods to mount the agent's /run/otel-netreceiver read-only
and connect() to api.sock in it. This checks that claim where it could fail: a real Unix
socket, a real read-only bind mount (in a private mount namespace, as the kubelet makes one
for a readOnly hostPath volumeMount), a client that is not root, and a write that must fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

# Runs inside `unshare --mount`: binds the agent's socket in SRC, mounts SRC read-only on DST
# (the application's view), then connects through DST as root and as uid 65534.
_CHILD = r"""
import errno, os, socket, subprocess, sys
src, dst = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(os.path.join(src, "api.sock"))
os.chmod(os.path.join(src, "api.sock"), 0o666)  # as otel_netreceiver/nodeapi/server.py does
server.listen(4)
server.settimeout(10)
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "--bind", src, dst], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", dst], check=True)
try:
    open(os.path.join(dst, "planted"), "w")
    print("WRITE-OK")
except OSError as exc:
    print("WRITE-" + errno.errorcode[exc.errno])
def ask(uid):
    pid = os.fork()
    if pid == 0:
        os.setgid(uid); os.setuid(uid)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(os.path.join(dst, "api.sock"))
            client.sendall(b"ping")
        except OSError as exc:
            print(f"CONNECT-{uid}-" + errno.errorcode[exc.errno], flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)  # connect() completes on the backlog, before accept()
    if os.waitstatus_to_exitcode(status) == 0:
        conn, _ = server.accept()
        print(f"CONNECT-{uid}-{conn.recv(4).decode()}", flush=True)
ask(0)
ask(65534)
"""


@pytest.fixture
def directories() -> Iterator[tuple[Path, Path]]:
    if os.geteuid() != 0:
        pytest.skip("bind mounts in a new mount namespace need root (CAP_SYS_ADMIN)")
    if not shutil.which("unshare"):
        pytest.skip("util-linux unshare is not installed")
    # Outside pytest's 0700 tmp_path: uid 65534 must be able to walk to the socket.
    base = Path(tempfile.mkdtemp(prefix=f"netreceiver-ro-{os.getpid()}-", dir="/tmp"))
    try:
        base.chmod(0o755)
        src, dst = base / "host-run-otel-netreceiver", base / "pod-run-otel-netreceiver"
        src.mkdir(mode=0o755)
        dst.mkdir(mode=0o755)
        yield src, dst
    finally:
        shutil.rmtree(base)


def test_connect_to_the_agent_socket_works_through_a_read_only_mount(
        directories: tuple[Path, Path]) -> None:
    src, dst = directories
    result = subprocess.run(["unshare", "--mount", sys.executable, "-c", _CHILD, str(src),
                             str(dst)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert "WRITE-EROFS" in lines, lines          # the application cannot plant anything
    assert "CONNECT-0-ping" in lines, lines      # connect() needs no writable mount
    assert "CONNECT-65534-ping" in lines, lines  # nor root: the socket is 0666
    assert not (src / "planted").exists()
