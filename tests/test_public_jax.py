"""The library uses JAX's public API only (its private modules and attributes change
without notice between releases), and never unpickles anything: checked on the source
with ast. Flagged: an import of a private module (`jax._src`, any `_name` component of a
jax or jaxlib module), a private attribute of a JAX module (`jax.<...>._name`) or of a
name that holds a JAX object (one assigned from a JAX module or from an array's
`.sharding`, `.devices()`...), getattr with a private name on those, JAX's internal
monitoring event names ("/jax/..."), and the pickle modules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "geomtoy"
JAX_MODULES = ("jax", "jaxlib")
JAX_OBJECT_ATTRIBUTES = {"sharding", "devices", "device", "addressable_shards", "aval", "mesh"}
"""Attributes through which a JAX object reaches a name (x.sharding, x.devices())."""
PICKLE = {"pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_jax(module: str) -> bool:
    return module.split(".")[0] in JAX_MODULES


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


class _Checker(ast.NodeVisitor):
    """Collects violations; names bound to JAX modules or JAX objects are tracked per
    file (a name assigned from one anywhere in the file counts everywhere)."""

    def __init__(self):
        self.jax_names: set[str] = set()
        self.problems: list[str] = []

    def _flag(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"line {node.lineno}: {what}")

    def _jaxish(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.jax_names:
                return True
            if isinstance(sub, ast.Attribute) and sub.attr in JAX_OBJECT_ATTRIBUTES:
                return True
        return False

    def visit_Import(self, node):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in PICKLE:
                self._flag(node, f"import {alias.name}")
            if _is_jax(alias.name):
                if any(_private(p) for p in alias.name.split(".")):
                    self._flag(node, f"import {alias.name}")
                self.jax_names.add(alias.asname or top)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if module.split(".")[0] in PICKLE:
            self._flag(node, f"from {module} import ...")
        if node.level == 0 and _is_jax(module):
            for alias in node.names:
                if any(_private(p) for p in [*module.split("."), alias.name]):
                    self._flag(node, f"from {module} import {alias.name}")
                self.jax_names.add(alias.asname or alias.name)

    def visit_Assign(self, node):
        if self._jaxish(node.value):
            for target in node.targets:  # names, not attributes (self.x = ... binds no self)
                elements = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
                self.jax_names |= {t.id for t in elements if isinstance(t, ast.Name)}
        self.generic_visit(node)

    def visit_Attribute(self, node):
        root = _root(node)
        if _private(node.attr) and isinstance(root, ast.Name) and self._jaxish(node.value):
            self._flag(node, f"private attribute {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and len(node.args) > 1:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                if _private(name.value) and self._jaxish(node.args[0]):
                    self._flag(node, f"private attribute via {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value.startswith("/jax/"):
            self._flag(node, f"JAX's internal event name {node.value!r}")


def problems(source: str) -> list[str]:
    """What the checker finds in `source`: bindings settle over two passes (a name may be
    assigned below its use), the third reports."""
    tree, checker = ast.parse(source), _Checker()
    for _ in range(2):
        checker.visit(tree)
        checker.problems.clear()
    checker.visit(tree)
    return checker.problems


def test_the_library_uses_public_jax_only_and_no_pickle():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if hits := problems(path.read_text()):
            found[str(path.relative_to(PACKAGE.parent))] = hits
    assert not found, found


@pytest.mark.parametrize(
    "source",
    [
        "from jax._src import config",
        "import jax._src.xla_bridge as xb",
        "from jax import _src",
        "import jax\nx = jax.config._read('x')",
        "import jax.numpy as jnp\njnp.zeros(3)._value",
        "def f(x):\n    sharding = x.sharding\n    return sharding._device_assignment",
        "def f(x):\n    return [d.id for d in x.sharding._device_assignment]",
        "import jax\nc = getattr(jax.config, '_trace_context', None)",
        "from jax import monitoring\nHIT = '/jax/compilation_cache/cache_hits'",
        "import pickle",
        "from pickle import loads",
    ],
)
def test_the_check_finds_each_kind(source):
    assert problems(source), source


@pytest.mark.parametrize(
    "source",
    [
        "import jax\njax.config.update('jax_enable_x64', True)",
        "import jax\nv = jax.__version__",
        "import jax\nclass P:\n    def __init__(self, f):\n        self.jitted = jax.jit(f)\n"
        "    def g(self):\n        return self._key()",
        "class A:\n    def f(self):\n        return self._x",
        "from geomtoy import lock\nlock._refusal()",
        "import numpy as np\nnp.load(p, allow_pickle=False)",
    ],
)
def test_the_check_passes_public_use(source):
    assert not problems(source), source
