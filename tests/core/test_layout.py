"""The package's shape: imports run one way (no cycle, counting imports inside
functions), verbs never import verbs, and git runs only in git.py."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "envoy.pyz.d" / "envoy"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or \
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every envoy module `path` imports, at the top or inside a function, except
    under `if TYPE_CHECKING:` (never run)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(base: str, level: int) -> str:
        parts = package.split(".")
        anchor = ".".join(parts[: len(parts) - level + 1]) if level else ""
        return ".".join(p for p in (anchor, base) if p)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for orelse in child.orelse:
                    visit_one(orelse)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "envoy":
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module or "", node.level) if node.level else (node.module or "")
            if base.split(".")[0] != "envoy":
                return
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        colour[module] = GREY
        stack.append(module)
        for target in sorted(graph[module]):
            if target == "envoy" or target.endswith("__init__"):
                continue  # the package's face imports nothing of envoy's
            if colour.get(target) == GREY:
                return stack[stack.index(target):] + [target]
            if colour.get(target) == WHITE:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        colour[module] = BLACK
        return None

    for module in sorted(graph):
        if colour[module] == WHITE:
            found = visit(module)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_verbs_do_not_import_verbs():
    graph = _graph()
    for module, targets in graph.items():
        if module.startswith("envoy.commands.") and module != "envoy.commands.common":
            verbs = {t for t in targets if t.startswith("envoy.commands.") and t != "envoy.commands.common"}
            assert not verbs, f"{module} imports the verb(s) {sorted(verbs)}: share through commands/common.py"


def test_git_runs_only_in_git_py():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "git.py" and path.parent == PACKAGE:
            continue
        text = path.read_text(encoding="utf-8")
        assert "sh.git" not in text and '"git",' not in text and "['git'" not in text and '["git"' not in text, \
            f"{path.relative_to(REPO_ROOT)} runs git itself: add a function to envoy/git.py"


def test_a_workers_state_changes_only_in_worker_record():
    """Every change of `state` goes through record.transition, which checks it against
    the state machine: no module but worker/record.py assigns it."""
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() == "worker/record.py":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (r'\["state"\]\s*=(?!=)', r"update\(state=", r'update\(\{"state"', r'setdefault\("state"'):
            found = re.search(pattern, text)
            assert not found, f"{path.relative_to(REPO_ROOT)} changes a state itself ({found and found.group()}): " \
                              "use envoy.worker.record.transition"
