"""The library's layout rules, checked on its source: no import cycle between geomtoy
modules, no function-local import of geomtoy or jax (the command line may import lazily),
and no file or function beyond the size limits (files ~450 lines, functions ~60)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "geomtoy"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 60
LAZY_IMPORTS_ALLOWED = {"cli.py", "__main__.py", "__init__.py"}
"""The front doors import lazily, for start-up time: the command line its subcommands'
modules, and `import geomtoy` nothing until a name is used (then geomtoy.open and Results
start no JAX, run and train_instances do)."""
TOO_LONG: set[str] = set()
"""Known excess still to split (path or path::function); anything else over a limit fails."""


def _modules() -> dict[str, ast.Module]:
    return {
        str(p.relative_to(PACKAGE)): ast.parse(p.read_text(), str(p))
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _name(rel: str) -> str:
    parts = ["geomtoy", *Path(rel).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against the importing module's package
            base = module.split(".")[: -node.level]
            node_module = ".".join(base + ([node.module] if node.module else []))
        else:
            node_module = node.module or ""
        return [node_module] + [f"{node_module}.{a.name}" for a in node.names]
    return []


def _top_level_imports(tree: ast.Module, module: str, known: set[str]) -> set[str]:
    out = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports are not run
            continue
        for name in _imported(node, module):
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def test_no_import_cycle():
    mods = _modules()
    known = {_name(rel) for rel in mods}
    graph = {_name(rel): _top_level_imports(t, _name(rel), known) for rel, t in mods.items()}
    # a package imports its submodules only through its own __init__, so drop package -> child
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in graph.get(m, ()):
            if dep.startswith(m + "."):
                continue
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [m, dep]))
            if dep not in state:
                visit(dep, path + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_no_function_local_imports_of_geomtoy_or_jax():
    found = []
    for rel, tree in _modules().items():
        if rel in LAZY_IMPORTS_ALLOWED:
            continue
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                for name in _imported(node, _name(rel)):
                    if name.split(".")[0] in ("geomtoy", "jax", "jaxlib"):
                        found.append(f"{rel}:{node.lineno} {fn.name} imports {name}")
    assert not found, "\n".join(sorted(set(found)))


def _sizes() -> dict[str, int]:
    out = {}
    for rel, tree in _modules().items():
        lines = (PACKAGE / rel).read_text().count("\n")
        if lines > MAX_FILE_LINES:
            out[rel] = lines
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                n = fn.end_lineno - fn.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out[f"{rel}::{fn.name}"] = n
    return out


def test_files_and_functions_within_limits():
    over = {k: v for k, v in _sizes().items() if k not in TOO_LONG}
    assert not over, (
        f"over {MAX_FILE_LINES} lines (file) or {MAX_FUNCTION_LINES} (function): {over}"
    )


@pytest.mark.parametrize("rule", ["cycle"])
def test_the_checks_can_fail(rule, tmp_path):
    """The cycle finder sees a cycle in a tiny synthetic graph (the checks are not vacuous)."""
    a = ast.parse("from geomtoy import b\n")
    b = ast.parse("import geomtoy.a\n")
    known = {"geomtoy.a", "geomtoy.b"}
    assert _top_level_imports(a, "geomtoy.a", known) == {"geomtoy.b"}
    assert _top_level_imports(b, "geomtoy.b", known) == {"geomtoy.a"}


STAGES = {
    "vocabulary": 0,  # spec, sae_spec, registry, checks, errors, the package (__version__)
    "sweep": 1,
    "geometry": 2,
    "results": 2,
    "engine": 3,
    "sae": 3,
    "runs": 4,
    "viz": 5,
    "front": 6,  # api, cli, __main__, the geomtoy.train re-export
    "zoo": 6,  # reference models: a front door (load reads package data; build trains via api)
}
"""A stage imports only stages at or below its rank: the file grammar knows no engine, the
engine no runner, geometry and results no training, nothing below the front doors the
command line. Folders hold the stages; at the top only the vocabulary and the front doors."""
TOP_LEVEL = {
    "vocabulary": {"spec", "sae_spec", "registry", "checks", "errors", "__init__"},
    "front": {"api", "cli", "__main__", "train"},
}


def _stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "vocabulary"
    if (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return next(s for s, names in TOP_LEVEL.items() if parts[1] in names)


def test_stage_folders_and_top_level():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {s for s in STAGES if s not in TOP_LEVEL}, folders
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == set().union(*TOP_LEVEL.values()), top - set().union(*TOP_LEVEL.values())


def _stage_violations(mods: dict[str, ast.Module]) -> list[str]:
    known = {_name(rel) for rel in mods}
    out = []
    for rel, tree in mods.items():
        module = _name(rel)
        for dep in _top_level_imports(tree, module, known):
            if STAGES[_stage(dep)] > STAGES[_stage(module)]:
                out.append(f"{module} ({_stage(module)}) imports {dep} ({_stage(dep)})")
    return out


def test_no_module_imports_a_stage_above_it():
    assert not _stage_violations(_modules()), "\n".join(_stage_violations(_modules()))


def test_the_stage_rule_can_fail():
    """An engine module importing the runner is caught (the rule is not vacuous)."""
    mods = {
        "engine/train.py": ast.parse("from geomtoy.runs import runner\n"),
        "runs/runner.py": ast.parse("import jax\n"),
    }
    assert _stage_violations(mods) == [
        "geomtoy.engine.train (engine) imports geomtoy.runs.runner (runs)"
    ]
