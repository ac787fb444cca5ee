"""The package's structure: no import cycle, no private name used across modules, results that
declare their fields, Problem fields declared once."""
import ast
import dataclasses
import inspect
import os

import pytest

import dmft
from dmft.problem import FIELDS, Problem

PKG = os.path.dirname(os.path.abspath(dmft.__file__))
MODULES = sorted(f[:-3] for f in os.listdir(PKG) if f.endswith(".py"))


def _imports(name):
    """(module imported, names taken from it) for every import of module ``name`` (at any
    depth: imports inside functions count)."""
    tree = ast.parse(open(os.path.join(PKG, name + ".py"), encoding="utf-8").read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:                        # from .x import a
                out.append((node.module.split(".")[0], [a.name for a in node.names]))
            elif node.level == 1:                                      # from . import x
                for a in node.names:
                    out.append((a.name if a.name in MODULES else "__init__", [a.name]))
            elif node.module and node.module.split(".")[0] == "dmft":  # from dmft.x import a
                parts = node.module.split(".")
                out.append((parts[1] if len(parts) > 1 else "__init__",
                            [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "dmft":
                    out.append((parts[1] if len(parts) > 1 else "__init__", []))
    return [(m, names) for m, names in out if m != name]


def _graph():
    return {m: sorted({dep for dep, _ in _imports(m)}) for m in MODULES}


def test_no_import_cycle():
    graph, state, stack = _graph(), {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for dep in graph.get(m, []):
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[m] = "done"

    for m in MODULES:
        if m not in state:
            visit(m)


def test_no_private_name_across_modules():
    bad = []
    for m in MODULES:
        for dep, names in _imports(m):
            bad += [f"{m} imports {dep}.{n}" for n in names
                    if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
        tree = ast.parse(open(os.path.join(PKG, m + ".py"), encoding="utf-8").read())
        imported = {a.asname or a.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
                    for a in node.names}
        for node in ast.walk(tree):       # module._private through `from . import module`
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in imported and node.attr.startswith("_") and \
                    not node.attr.startswith("__"):
                bad.append(f"{m} uses {node.value.id}.{node.attr}")
    assert not bad, bad


def test_graph_sees_imports():
    """The checks above can fail: the graph contains the known edges."""
    graph = _graph()
    assert "weight" in graph["solver"] and "options" in graph["solver"]
    assert "result" in graph["simulate"] and "io" in graph["result"]


def test_results_declare_their_fields():
    from dmft.compare import Comparison
    from dmft.learnability import LearnabilityResult
    for cls in (dmft.Result, dmft.SimResult, Comparison, LearnabilityResult):
        assert dataclasses.is_dataclass(cls), cls
    base = {f.name for f in dataclasses.fields(dmft.result.Curves)}
    assert base <= {f.name for f in dataclasses.fields(dmft.Result)}
    assert base <= {f.name for f in dataclasses.fields(dmft.SimResult)}
    with pytest.raises(TypeError):           # a typo does not pass
        dmft.SimResult(problem=None, tyme=1)


def test_every_stored_array_is_in_the_schema():
    from dmft.schema import VARIABLES
    for cls in (dmft.Result, dmft.SimResult):
        for f in dataclasses.fields(cls):
            if f.metadata.get("store") == "var":
                assert f.name.removesuffix("_err") in VARIABLES, f.name


def test_problem_fields_declared_once():
    params = list(inspect.signature(Problem.__init__).parameters)[1:]
    assert params == list(FIELDS)
    assert set(Problem("z1").to_dict()) == set(FIELDS)


def test_modules_stay_small():
    sizes = {m: sum(1 for _ in open(os.path.join(PKG, m + ".py"), encoding="utf-8"))
             for m in MODULES}
    assert max(sizes.values()) <= 450, sorted(sizes.items(), key=lambda x: -x[1])[:3]
