"""The package's import graph has no cycle (ARCHITECTURE.md: arrows point one way). Every import
counts, function-level ones included: a lazy import that hides a cycle is still a cycle."""
import ast
import pathlib

import edgeopt

PKG = pathlib.Path(edgeopt.__file__).resolve().parent


def modules() -> dict:
    """Dotted name -> (path, is_package) for every .py module; compiled ones (edgeopt._core) as leaves."""
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    for f in PKG.glob("*.so"):
        out.setdefault("edgeopt." + f.name.split(".")[0], (None, False))
    return out


def imports_of(name: str, path: pathlib.Path, is_pkg: bool, mods: dict) -> set:
    """Modules of the package that `name` imports: `from X import y` is X.y when that is a module."""
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in mods and t != name)
    return out


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_walker_sees_a_cycle():
    # The check must be able to fail: a two-module cycle and a three-module one are found.
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    mods = modules()
    graph = {m: (imports_of(m, f, p, mods) if f else set()) for m, (f, p) in mods.items()}
    assert "edgeopt.nn" in graph and graph["edgeopt.nn.conv"], "the walker found no imports"
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_layers_below_deploy_never_import_it():
    # ARCHITECTURE.md: deploy sits above the training engine and the techniques; an Engine is
    # recognized where needed (train.evaluate) by its run(), never imported.
    mods = modules()
    below = ("nn", "optim", "data", "models", "graph", "train", "quant", "prune")
    offenders = sorted((m, t) for m, (f, p) in mods.items() if f and m.split(".")[1:2] and m.split(".")[1] in below
                       for t in imports_of(m, f, p, mods) if t.startswith("edgeopt.deploy"))
    assert not offenders, f"imports of deploy from below it: {offenders}"
