"""The package's layout is its data flow: imports point down the flow only, without cycles, and the experiments leaf
is imported by nothing below it. Read from the source with ast (nothing is imported), so a violation fails here
before it can hide behind a function-level import. Also: module and function sizes, and no reference to files
outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "samr1lib"

# The stages in data-flow order (samr1lib/__init__.py draws the same list). A module may import from its own
# stage and from stages before it, never after.
FLOW = ["presets", "config", "masks", "prompt", "parse", "frames", "data", "policy", "segmenters", "metrics",
        "rewards", "losses", "train", "view", "evaluate", "experiments", "bench", "notebooks"]
LEAF = {"experiments", "bench", "notebooks"}  # bench.py / notebooks.py: the CLI entries of the leaf
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every samr1lib module this file imports, at any depth of the code (function-level imports included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("samr1lib")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("samr1lib"):
                target = node.module
            else:
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from . import x` imports submodule x
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        targets = set()
        for t in imports(path):
            while t and t not in files:  # `from .x import name`: the module is x
                t = t.rsplit(".", 1)[0] if "." in t else ""
            while t:  # importing a.b.c runs a/__init__ and a/b/__init__ first (unless they are this module's own)
                if t != name and not name.startswith(t + "."):
                    targets.add(t)
                t = t.rsplit(".", 1)[0] if "." in t else ""
        edges[name] = targets - {"samr1lib"}
    return edges


def stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "samr1lib"


def test_no_import_cycles():
    edges, state, cycles = graph(), {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_point_down_the_data_flow_and_nothing_imports_the_experiments_leaf():
    bad = []
    for module, targets in graph().items():
        here = stage(module)
        if here == "samr1lib":
            continue
        assert here in FLOW, f"{module}: stage {here!r} is not in the data-flow order of this test (FLOW)"
        for t in targets:
            there = stage(t)
            if there in LEAF and here not in LEAF:
                bad.append(f"{module} imports the experiments leaf ({t})")
            elif FLOW.index(there) > FLOW.index(here):
                bad.append(f"{module} ({here}) imports {t} ({there}), which comes later in the flow")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The two checks above can fail: a planted upward import and cycle are caught."""
    fake = tmp_path / "samr1lib"
    (fake / "rewards").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "masks.py").write_text("from .rewards import build\n")
    (fake / "rewards" / "__init__.py").write_text("from . import build\n")
    (fake / "rewards" / "build.py").write_text("from ..masks import x\nfrom ..experiments import toy\n")
    (fake / "experiments").mkdir()
    (fake / "experiments" / "__init__.py").write_text("")
    (fake / "experiments" / "toy.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    edges = graph()
    assert "samr1lib.rewards" in edges["samr1lib.masks"] and "samr1lib.masks" in edges["samr1lib.rewards.build"]
    for check in (test_no_import_cycles, test_imports_point_down_the_data_flow_and_nothing_imports_the_experiments_leaf):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} missed the planted violation")


def test_modules_and_functions_stay_small():
    long = []
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not long, "\n".join(long)


def test_the_repository_stands_alone():
    """Code, README and notebooks cite the papers or documents inside the repository, never files beside it."""
    tracked = subprocess.run(["git", "ls-files", "samr1lib", "README.md", "notebooks", "docs", "scripts"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    pattern = re.compile(r"PAPER\.md|NOTES\.md|STYLE\.md|DESIGN\.md|\.\./shared|shared/")
    hits = [f"{f}: {m.group(0)}" for f in tracked if (ROOT / f).is_file()
            for m in pattern.finditer((ROOT / f).read_text(errors="ignore"))]
    assert not hits, "\n".join(hits)
