"""The shape of the code: imports run one way, memory/ draws nothing, no module grows past 400 lines.

Imports are read from the source (every `import`, lazy ones inside functions included, since a
lazy import is still a dependency), so these hold without importing anything heavy.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("assistant", "memory")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The names this module imports: project modules by their own name, anything else by its top package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)  # `from pkg import module` imports the module
    return {i if i in known else i.split(".")[0] for i in out}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    project = {name: {i for i in imports if i in graph and i != name} for name, imports in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(project[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for name in sorted(project):
        if name not in state:
            visit(name, [name])
    return cycles


def test_there_is_no_import_cycle_among_the_projects_modules():
    graph = _graph()
    assert "assistant.config" in graph["assistant.cli"], "the walk is not reading the imports"
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_memory_never_imports_the_assistant_and_draws_nothing():
    for name, imports in _graph().items():
        if name.startswith("memory"):
            drawn = imports & {"assistant", "rich", "matplotlib", "textual"}
            assert not drawn and not any(i.startswith("assistant.") for i in imports), (name, imports)


def test_the_runtime_floor_imports_nothing_from_memchat():
    for name, imports in _graph().items():
        if name.startswith("memory.runtime"):
            assert not [i for i in imports if i.split(".")[0] in PACKAGES and not i.startswith("memory.runtime")], name


def test_no_module_is_past_the_size_where_it_asks_to_be_split():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The checker itself: a two-module cycle written to disk is reported."""
    (tmp_path / "assistant").mkdir()
    (tmp_path / "memory").mkdir()
    (tmp_path / "assistant" / "a.py").write_text("from assistant import b\n")
    (tmp_path / "assistant" / "b.py").write_text("def f():\n    from assistant.a import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["REPO"]), "REPO", tmp_path)
    graph = _graph()
    assert graph["assistant.a"] == {"assistant.b"} and graph["assistant.b"] == {"assistant.a"}
    assert _cycles(graph) == [["assistant.a", "assistant.b", "assistant.a"]]


def test_env_example_lists_every_variable():
    from assistant.config import ENV_NAMES
    from memory.stores import STORES

    listed = (REPO / ".env.example").read_text()
    names = [var for names in ENV_NAMES.values() for var in names] + [
        var for spec in STORES.values() for var in spec.settings.values()]
    assert [var for var in names if f"# {var}=" not in listed and f"or {var}" not in listed] == []


def test_memory_and_session_memory_speak_the_same_typed_protocol():
    """The chat loop drives both through TurnLog: every parameter the protocol names, each takes."""
    import inspect

    from memory.memory import Memory
    from memory.session import SessionMemory
    from memory.turn_log import TurnLog

    for name in ("remember", "turns", "has_conversation", "recall", "vectors"):
        wanted = list(inspect.signature(getattr(TurnLog, name)).parameters)
        for cls in (Memory, SessionMemory):
            have = list(inspect.signature(getattr(cls, name)).parameters)
            assert have[:len(wanted) - ("fields" in wanted)] == [w for w in wanted if w != "fields"], (cls, name, have)
            assert not any(p.startswith("_") and p != "text_" for p in have), (cls, name, have)
