"""The folders show the architecture, and dependencies point one way.

Every import statement under ``core/`` and ``cli/`` (module level or inside a function; not the
ones under ``if TYPE_CHECKING``) is an edge of a module graph. The graph has no cycle, and each
layer imports only the layers below it:
cli -> surgery, visual -> onnx (export) -> binding -> engine, formats -> errors, lazy, dtypes, version.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = {"core": "modelsurgeon.core", "cli": "modelsurgeon.cli"}

#: layer of a module: its subpackage under core (or the module itself), or "cli"
LAYERS = {
    "cli": {"cli", "surgery", "visual", "onnx", "binding", "engine", "formats", "utilities", "root"},
    "visual": {"visual", "surgery", "binding", "engine", "formats", "utilities"},
    "surgery": {"surgery", "onnx", "binding", "engine", "formats", "utilities"},
    "onnx": {"onnx", "binding", "engine", "formats", "utilities"},
    "binding": {"binding", "engine", "formats", "utilities"},
    "engine": {"engine", "utilities"},
    "formats": {"formats", "utilities"},
    "utilities": {"utilities"},
    "root": {"root", "engine", "utilities", "binding"},
}
UTILITIES = {"errors", "lazy", "dtypes", "version"}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for top, package in PACKAGE.items():
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT / top).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip |= {id(n) for n in ast.walk(node)}
    edges = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                       for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_module" and node.args:
            arg = node.args[0]
            text = arg.value if isinstance(arg, ast.Constant) else None
            if isinstance(arg, ast.JoinedStr):  # f"{__package__}.engine.x"
                text = "modelsurgeon.core" + "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
            targets = [text] if isinstance(text, str) else []
        else:
            continue
        edges |= {t for t in targets if t in modules and t != name}
    return edges


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[1] == "cli":
        return "cli"
    if len(parts) == 2:
        return "root"
    head = parts[2]
    if head in ("keytree", "compare"):  # views of files' TensorInfos and tensors
        return "formats"
    if head in UTILITIES:
        return "utilities"
    return head


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ gathering its own modules is not a dependency of those modules
    graph = {m: {t for t in ts if not (t in graph and m.startswith(t + "."))} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, targets in _graph().items():
        allowed = LAYERS[_layer(module)]
        wrong += [f"{module} -> {t}" for t in sorted(targets) if _layer(t) not in allowed]
    assert wrong == []


def test_no_module_over_about_600_lines():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > 650]
    assert long == []
