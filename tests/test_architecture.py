"""The layers of ARCHITECTURE.md, checked on every import of the code (at module level or
inside a function, under TYPE_CHECKING or not): which part may import which, no cycle
between modules, and the AgentCore SDK and websockets behind one boundary.

The check reads the source (``ast``), so it sees the imports a test run never executes;
the last tests show that it fails on a forbidden import and on a cycle added to a copy of
the tree.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("skymarshal_api", "health", "sessions", "invocations", "local_runtime")

TELEMETRY = "skymarshal_api.telemetry"
WEB = "skymarshal_api.web"
AUTH = "skymarshal_api.auth"
LIMITS = "skymarshal_api.limits"
BASE_VIEW = "skymarshal_api.views"
ENVIRONMENT = "skymarshal_api.environment"
PROJECT = "skymarshal_api"
CROSS_CUTTING = frozenset({TELEMETRY, WEB, AUTH, LIMITS, BASE_VIEW})

# Each part, and the parts it may import (besides itself). The project (settings, URLs,
# WSGI, checks, its own two endpoints) may import anything and nothing imports it; the
# cross-cutting packages import no app; the apps import downwards only: health reads
# invocations and sessions, invocations builds on sessions, sessions on no app.
ALLOWED: Mapping[str, frozenset[str]] = {
    TELEMETRY: frozenset(),
    WEB: frozenset({TELEMETRY}),
    AUTH: frozenset({WEB, TELEMETRY}),
    LIMITS: frozenset({WEB, TELEMETRY}),
    BASE_VIEW: frozenset({AUTH, LIMITS, WEB, TELEMETRY}),
    ENVIRONMENT: frozenset(),
    "sessions": CROSS_CUTTING,
    "invocations": CROSS_CUTTING | {"sessions"},
    "health": CROSS_CUTTING | {"sessions", "invocations"},
    PROJECT: CROSS_CUTTING | {ENVIRONMENT, "sessions", "invocations", "health"},
    # The stand-in runtime is another program: it imports nothing of the API.
    "local_runtime": frozenset(),
}
# Third-party packages only one boundary of the API may import: the AgentCore runtime's
# connection (runtime_client) and control plane (runtime_status). The stand-in runtime is
# an AgentCore app itself.
BOUNDARIES: Mapping[str, frozenset[str]] = {
    "websockets": frozenset({"invocations.runtime_client"}),
    "bedrock_agentcore": frozenset({"invocations.runtime_client", "invocations.runtime_status"}),
}


def part_of(module: str) -> str:
    """The part ``module`` belongs to: the longest name of ALLOWED that contains it."""
    best = ""
    for part in ALLOWED:
        if (module == part or module.startswith(part + ".")) and len(part) > len(best):
            best = part
    if not best:
        raise AssertionError(f"{module} belongs to no part of ARCHITECTURE.md")
    return best


@dataclass(frozen=True)
class Import:
    module: str
    imported: str
    line: int


def modules_of(root: Path) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for source in sorted((root / package).rglob("*.py")):
            parts = list(source.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = source
    return modules


def imports_of(module: str, source: Path) -> Iterator[Import]:
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    package = module.split(".") if source.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield Import(module, base, node.lineno)
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def first_party(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module of ours that ``name`` (a module, or a name in one) is, if any."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def violations(root: Path) -> list[str]:
    modules = modules_of(root)
    found: list[str] = []
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, source in modules.items():
        for imp in imports_of(module, source):
            where = f"{source.relative_to(root)}:{imp.line}"
            top = imp.imported.split(".")[0]
            if (
                top in BOUNDARIES
                and part_of(module) != "local_runtime"
                and (module not in BOUNDARIES[top])
            ):
                found.append(f"{where}: {module} imports {top}, which only "
                             f"{sorted(BOUNDARIES[top])} may import")  # fmt: skip
            target = first_party(imp.imported, modules)
            if target is None or target == module:
                continue
            graph[module].add(target)
            source_part, target_part = part_of(module), part_of(target)
            if source_part != target_part and target_part not in ALLOWED[source_part]:
                found.append(f"{where}: {module} ({source_part}) imports {target} ({target_part})")
    found.extend(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph))
    return sorted(set(found))


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [[*group, group[0]] for group in groups]


def test_every_import_follows_the_layers_of_architecture_md() -> None:
    assert violations(ROOT) == []


def test_every_module_belongs_to_a_part() -> None:
    modules = modules_of(ROOT)
    assert len(modules) > 50
    assert {part_of(module) for module in modules} == set(ALLOWED)


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    assert violations(tmp_path) == []
    return tmp_path


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code + "\n", encoding="utf-8")


def test_a_cross_cutting_package_importing_an_app_fails_the_check(tree_copy: Path) -> None:
    errors = tree_copy / "skymarshal_api/web/errors.py"
    _append(errors, "def _late() -> None:\n    from sessions.services import clock_ms  # noqa")
    line = len(errors.read_text(encoding="utf-8").splitlines())
    assert (
        f"skymarshal_api/web/errors.py:{line}: skymarshal_api.web.errors (skymarshal_api.web) "
        "imports sessions.services (sessions)"
    ) in violations(tree_copy)


def test_an_app_importing_upwards_fails_the_check(tree_copy: Path) -> None:
    _append(tree_copy / "sessions/selectors.py", "import health.checks  # noqa")
    found = violations(tree_copy)
    assert any("sessions.selectors (sessions) imports health.checks (health)" in f for f in found)


def test_an_import_cycle_fails_the_check(tree_copy: Path) -> None:
    # Within one part, so that only the cycle is wrong.
    _append(tree_copy / "sessions/models.py", "from sessions import services  # noqa")
    found = violations(tree_copy)
    assert [line for line in found if line.startswith("import cycle: ")], found


def test_websockets_outside_the_agentcore_boundary_fails_the_check(tree_copy: Path) -> None:
    _append(tree_copy / "invocations/services.py", "import websockets  # noqa")
    [found] = violations(tree_copy)
    assert "invocations.services imports websockets" in found
