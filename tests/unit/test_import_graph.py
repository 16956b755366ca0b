"""kafkaboot's modules import each other without cycles.

A cycle means two modules are one concept in two files, or a lower layer reaches up (the
listener package into the application's DI module). Python hides most cycles until an
import order trips over a half-initialised module, so this reads the import statements
instead: every ``import`` and ``from ... import`` in a module, at module level, inside
functions (a lazy import is still a dependency) and under ``if TYPE_CHECKING:`` (a
type-only dependency is still one in the design). A package's ``__init__`` importing its own
submodules is not a dependency of those submodules on it: only the modules named in import
statements count.
"""

import ast
from collections import deque
from pathlib import Path

import kafkaboot

PACKAGE = Path(kafkaboot.__file__).parent

ALLOWED_CYCLES: set[frozenset[str]] = set()


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The kafkaboot modules ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # Relative: from the package that holds this module.
                package = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"  # from pkg import module
                found.add(submodule if submodule in known else base)
    return (found & known) - {name}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [group for group in groups if len(group) > 1]


def shortest_cycle(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """A shortest cycle through ``start``, rotated to begin at its smallest module name so
    the same cycle found from two of its modules reads the same."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & group):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                path.reverse()
                first = path.index(min(path))
                path = path[first:] + path[:first]
                return [*path, path[0]]
            if target not in previous:
                previous[target] = node
                queue.append(target)
    raise AssertionError(f"{start} is on no cycle of {sorted(group)}")


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle through each module that is on one, each cycle shown once."""
    found = {
        tuple(shortest_cycle(graph, group, start))
        for group in strongly_connected(graph)
        for start in group
    }
    return [list(cycle) for cycle in sorted(found)]


def test_the_scan_sees_lazy_and_type_only_imports():
    graph = import_graph()
    # Lazy, inside a function body:
    assert "kafkaboot.runner" in graph["kafkaboot.cli"]
    # Under `if TYPE_CHECKING:`:
    assert "kafkaboot.template" in graph["kafkaboot.errorhandling.dead_letter"]
    # `from package import module` names the module, not the package:
    assert "kafkaboot.listener.binding" in graph["kafkaboot.listener.registry"]


def test_the_cycle_finder_reports_each_cycle_once_from_its_smallest_module():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles_in(graph) == [["a", "b", "c", "a"], ["d", "e", "d"]]


def test_kafkaboot_modules_import_each_other_without_cycles():
    cycles = cycles_in(import_graph())
    forbidden = [cycle for cycle in cycles if frozenset(cycle) not in ALLOWED_CYCLES]
    assert not forbidden, (
        "import cycles (move what both sides need into a module of its own, or invert the "
        "dependency):\n  " + "\n  ".join(" -> ".join(cycle) for cycle in forbidden)
    )
    stale = ALLOWED_CYCLES - {frozenset(cycle) for cycle in cycles}
    assert not stale, f"these cycles are gone; remove them from ALLOWED_CYCLES: {stale}"
