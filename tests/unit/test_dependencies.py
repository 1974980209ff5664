"""pyproject.toml declares what the agent imports at runtime, and nothing it does not.

Walks every module of otel_netreceiver with ``ast`` (imports inside functions
included), finds the distribution that provides each third-party module from
the installed files (namespace packages such as ``opentelemetry`` are split by
the file that is actually imported), and checks it against the declared lists:
a module-level import needs a core dependency; a lazy one (inside a function)
may come from an extra. Every core dependency must be imported somewhere.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
PACKAGE = ROOT / "otel_netreceiver"
SDK_PACKAGE = ROOT / "sdk" / "src" / "otel_netreceiver_sdk"
# Not on PyPI: Debian's python3-bpfcc, linked into the venv when wanted (deploy/image/
# Containerfile, scripts/dev.sh).
SYSTEM_PROVIDED = {"bcc"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _normal(re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0])


def declared() -> tuple[set[str], set[str]]:
    """(core dependencies, dependencies of the non-test extras), normalised names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {name: deps for name, deps in project.get("optional-dependencies", {}).items()
              if name != "test"}
    return ({_requirement_name(d) for d in project["dependencies"]},
            {_requirement_name(d) for deps in extras.values() for d in deps})


def _from_names(module: str, names: list[str]) -> list[str]:
    """``from opentelemetry import metrics`` imports ``opentelemetry.metrics``: a namespace
    package has no file of its own to tell its distribution by."""
    if module.split(".")[0] in sys.stdlib_module_names:
        return [module]
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin is None:
        return [f"{module}.{name}" for name in names]
    return [module]


def runtime_imports(package: Path = PACKAGE) -> dict[str, bool]:
    """Absolute third-party module names imported by the package → imported at module level?"""
    found: dict[str, bool] = {}
    own = package.name
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = _from_names(node.module, [a.name for a in node.names])
            else:
                continue
            for name in names:
                if name.split(".")[0] in sys.stdlib_module_names or \
                        name.split(".")[0] in (own, *SYSTEM_PROVIDED):
                    continue
                found[name] = found.get(name, False) or id(node) in top
    return found


@cache
def _files_to_distribution() -> dict[Path, str]:
    index: dict[Path, str] = {}
    for dist in md.distributions():
        for file in dist.files or ():
            index[Path(dist.locate_file(file)).resolve()] = _normal(dist.metadata["Name"])
    return index


def distribution_of(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{module} is imported but not installed"
    dist = _files_to_distribution().get(Path(spec.origin).resolve())
    assert dist, f"no installed distribution ships {spec.origin} ({module})"
    return dist


def test_every_runtime_import_is_declared() -> None:
    core, extras = declared()
    missing = []
    for module, module_level in sorted(runtime_imports().items()):
        dist = distribution_of(module)
        allowed = core if module_level else core | extras
        if dist not in allowed:
            where = "dependencies" if module_level else "dependencies or an extra"
            missing.append(f"{module} (from {dist}) is not in pyproject's {where}")
    assert not missing, "\n".join(missing)


def test_every_core_dependency_is_imported() -> None:
    core, _ = declared()
    used = {distribution_of(m) for m in runtime_imports()}
    assert core - used == set(), "declared but never imported at runtime: move to an extra"


def test_the_walk_sees_lazy_and_namespace_imports() -> None:
    """The checks above are only as good as the walk: it must find these known imports."""
    imports = runtime_imports()
    assert imports["grpc"] is False  # inside GrpcTransport: the grpc extra
    assert distribution_of("google.rpc.error_details_pb2") == "googleapis-common-protos"
    assert distribution_of("opentelemetry.sdk.resources") == "opentelemetry-sdk"
    assert any(distribution_of(m) == "opentelemetry-proto" for m in imports)


def test_the_sdk_imports_only_the_opentelemetry_api_at_module_level() -> None:
    """The SDK distribution promises the standard library and opentelemetry-api only; the
    libraries it instruments (requests, httpx, aiohttp) are imported lazily, when present."""
    project = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(d) for d in project["dependencies"]}
    assert core == {"opentelemetry-api"}
    eager = [m for m, module_level in runtime_imports(SDK_PACKAGE).items() if module_level]
    assert eager, "the walk found no import at all: wrong path?"
    wrong = sorted(f"{m} (from {distribution_of(m)})" for m in eager
                   if distribution_of(m) not in core)
    assert not wrong, wrong
