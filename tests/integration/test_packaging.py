"""What a user who is not a developer of this repository installs: the two wheels.

Builds an sdist and a wheel of both distributions with ``python -m build``, checks them
with ``twine check``, installs them into fresh virtual environments outside the
repository and runs the installed command there: ``check-config`` on the shipped example
and the DaemonSet's configuration, ``probes`` and ``once`` with the eBPF probes (their C
sources are package data), and the SDK with nothing but opentelemetry-api beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BCC = Path("/usr/lib/python3/dist-packages/bcc")


def _run(*argv: str | Path, cwd: Path, timeout: float = 600,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run outside the checkout: never with the caller's PYTHONPATH (it would import the
    repository's copy instead of the installed one)."""
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env or _clean_env())
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for project in (ROOT, ROOT / "sdk"):
        # a copy, so the build never writes build/ or *.egg-info into the checkout
        src = out / f"src-{project.name}"
        shutil.copytree(project, src, ignore=shutil.ignore_patterns(
            ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", "sdk", "tests"))
        _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, src, cwd=out)
    return out


def _venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def test_both_distributions_build_and_pass_twine_check(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir() if p.is_file())
    assert [n for n in names if n.endswith(".whl")] == [
        n for n in names if n.startswith(("otel_netreceiver-", "otel_netreceiver_sdk-"))
        and n.endswith(".whl")]
    assert len([n for n in names if n.endswith(".whl")]) == 2, names
    assert len([n for n in names if n.endswith(".tar.gz")]) == 2, names
    _run(sys.executable, "-m", "twine", "check", "--strict",
         *sorted(p for p in dist.iterdir() if p.is_file()), cwd=dist)


def test_the_installed_agent_runs_outside_the_repository(dist: Path, tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv")
    wheel = next(dist.glob("otel_netreceiver-*.whl"))
    _run(bin_dir / "pip", "install", "-q", wheel, cwd=tmp_path)
    site = Path(_run(bin_dir / "python", "-c", "import site; print(site.getsitepackages()[0])",
                     cwd=tmp_path).stdout.strip())
    if BCC.is_dir():  # bcc is Debian's python3-bpfcc, linked as scripts/dev.sh does
        (site / "bcc").symlink_to(BCC)
    env, cli = _clean_env(), bin_dir / "otel-netreceiver"
    find = "import importlib.resources as r; print(r.files('otel_netreceiver.config'))"
    example = Path(_run(bin_dir / "python", "-c", find, cwd=tmp_path).stdout.strip()) / \
        "example.yaml"
    assert str(example).startswith(str(tmp_path)), example  # the installed copy, not ROOT's
    daemonset = tmp_path / "agent-config.yaml"
    shutil.copy(ROOT / "deploy/kubernetes/base/agent-config.yaml", daemonset)
    for config in (example, daemonset):
        assert "valid" in _run(cli, "check-config", config, cwd=tmp_path, env=env).stdout
    config = tmp_path / "node.yaml"
    config.write_text(example.read_text().replace("/run/otel-netreceiver/api.sock",
                                                  str(tmp_path / "api.sock")))
    probes = json.loads(_run(cli, "probes", "-c", config, "--format", "json", cwd=tmp_path,
                             env=env).stdout)
    status = {p["name"]: p for p in probes}
    assert status["podnet"]["active"], status["podnet"]
    if os.geteuid() == 0 and BCC.is_dir():
        assert status["ebpf"]["active"], status["ebpf"]  # the C sources came with the wheel
    once = json.loads(_run(cli, "once", "-c", config, "--format", "json", cwd=tmp_path,
                           env=env).stdout)
    metrics = {s["metric"] for s in once["series"]}
    assert {"netreceiver.tcp.out_segs", "netreceiver.collector.cycles"} <= metrics, metrics
    if status["ebpf"]["active"]:  # what only the eBPF collector, reading its maps, reports
        assert "netreceiver.bpf.lost" in metrics, metrics


def test_the_sdk_installs_with_only_the_opentelemetry_api(dist: Path, tmp_path: Path) -> None:
    bin_dir = _venv(tmp_path / "venv")
    _run(bin_dir / "pip", "install", "-q", next(dist.glob("otel_netreceiver_sdk-*.whl")),
         cwd=tmp_path)
    installed = _run(bin_dir / "pip", "list", "--format", "json", cwd=tmp_path).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert "opentelemetry-api" in names
    assert not {"opentelemetry-sdk", "otel-netreceiver"} & names, names
    _run(bin_dir / "python", "-c", "import otel_netreceiver_sdk as s; "
         "assert hasattr(s, 'NetReceiverInstrumentor')", cwd=tmp_path, env=_clean_env())
