"""The shape of ``src/lva``: no import cycles (function-level imports included), no oversized module, no
other package's internals used outside ``lva/patches.py``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "lva"
MAX_LINES = 500

#: Modules allowed over MAX_LINES (paths relative to src/lva). Keep it empty: split a module that
#: grows past the limit into a package, one concern per module.
OVERSIZED_ALLOWED: set[str] = set()

#: Import edges left out of the cycle check, each with the reason it still exists. Keep it empty
#: or nearly so: every entry is a backwards-compatible name waiting for its last user to move.
TRANSITIONAL_EDGES: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every lva module ``path`` imports, at module level or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # "from lva import models" imports the module lva.models; "from .io import save_json" imports lva.io
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for cand in candidates:
            while cand and cand not in known:  # "lva.models.x" -> "lva.models"
                cand = cand.rpartition(".")[0]
            if cand and cand != name and cand != "lva":
                found.add(cand)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(SRC.rglob("*.py"))
    known = {module_name(p) for p in files}
    graph = {module_name(p): imported_modules(p, known) for p in files}
    for src, dst in TRANSITIONAL_EDGES:
        graph[src].discard(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "lva.config" in graph["lva.env"]  # module level, relative
    assert "lva.models" in graph["lva.embeddings"]  # "from lva import models as M"
    assert "lva.vision" in graph["lva.agent"]  # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_transitional_edges_still_exist():
    """An entry whose import is gone must leave TRANSITIONAL_EDGES too."""
    paths = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}  # a package is its __init__.py
    for (src, dst), why in TRANSITIONAL_EDGES.items():
        still = dst in imported_modules(paths[src], set(paths))
        assert still, f"{src} no longer imports {dst}: remove the entry ({why})"


def test_no_module_is_too_long():
    """Every module of every package, ``__init__.py`` included, keeps under MAX_LINES."""
    modules = {p.relative_to(SRC).as_posix(): p for p in SRC.rglob("*.py")}
    assert "models/registry.py" in modules and "viz/__init__.py" in modules  # packages are walked
    long = {rel: n for rel, p in modules.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= OVERSIZED_ALLOWED, f"modules over {MAX_LINES} lines: {long}"


def test_openmp_wait_policy_is_set_before_lva_imports_torch():
    """``import lva`` sets OMP_WAIT_POLICY before any lva module can load torch (OpenMP reads it once, at load)."""
    import os
    import subprocess
    import sys

    code = "import os, sys, lva; assert 'torch' not in sys.modules; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"


#: The one module that may use other packages' private names and replace their functions.
PATCHES_MODULE = SRC / "patches.py"
#: Private-looking names that are public API (namedtuple methods); not flagged anywhere.
PUBLIC_UNDERSCORE = {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}
#: Third-party module attributes that are meant to be assigned (redirecting the standard streams).
ASSIGNABLE = {"sys.stdout", "sys.stderr", "sys.stdin"}
#: Third-party private names used outside the patches module, each with why it is public in effect.
#: Keep it short: anything else goes into lva/patches.py with a pinned test.
ALLOWED_PRIVATE_USES = {
    ("env.py", "_gen_grid"): "MiniGridEnv's abstract method: every MiniGrid environment implements it "
    "(MiniGrid's documented way to write one)",
    ("env.py", "_reward"): "MiniGridEnv._reward(), the success reward every MiniGrid environment's step "
    "returns; its subclasses call it (documented with _gen_grid)",
}


def _lva_private_names() -> set[str]:
    """Every ``_name`` lva defines (functions, classes, variables, attributes, arguments) outside the
    patches module."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path == PATCHES_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _third_party_names(tree: ast.AST) -> set[str]:
    """Local names bound by ``import x`` / ``from x import y`` of a package other than lva."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {a.asname or a.name.split(".")[0] for a in node.names if not a.name.startswith("lva")}
        elif isinstance(node, ast.ImportFrom) and not node.level and not (node.module or "").startswith("lva"):
            bound |= {a.asname or a.name for a in node.names}
    return bound


def _overrides_third_party(path: Path, cls_name: str, method: str) -> bool:
    """Whether ``method`` of class ``cls_name`` (a module-level class of lva) is defined by one of its
    base classes from another package; a class that cannot be imported counts as overriding."""
    try:
        cls = getattr(importlib.import_module(module_name(path)), cls_name)
    except (ImportError, AttributeError, ValueError):
        return True
    return any(method in vars(base) for base in cls.__mro__[1:] if not base.__module__.startswith("lva"))


def third_party_private_uses(path: Path, ours: set[str]) -> list[tuple[str, str]]:
    """Where ``path`` touches another package's private names or replaces its attributes, as
    ``(where, what)``:

    - ``x._name`` (read or written) where ``_name`` is defined nowhere in lva;
    - ``getattr``/``setattr``/``hasattr``/``delattr`` with such a name as a string;
    - ``from pkg import _name`` from a package other than lva;
    - a private method of a third-party base class defined again in a class of lva (an override);
    - an attribute of an imported third-party name assigned (``module.f = ...``), ``setattr`` on
      anything but ``self``/``cls``, or ``types.MethodType`` (a method bound onto another object).
    """
    tree = ast.parse(path.read_text(), str(path))
    third = _third_party_names(tree)
    where = path.relative_to(SRC).as_posix() if path.is_relative_to(SRC) else path.name

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__") and name not in ours | PUBLIC_UNDERSCORE

    found = []
    for node in ast.walk(tree):
        at = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and private(node.attr):
            found.append((at, node.attr))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in third
            and f"{node.value.id}.{node.attr}" not in ASSIGNABLE
        ):
            found.append((at, f"assigns {node.value.id}.{node.attr}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            args = node.args
            if (
                node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(args) > 1
                and isinstance(args[1], ast.Constant)
                and isinstance(args[1].value, str)
                and private(args[1].value)
            ):
                found.append((at, args[1].value))
            elif node.func.id == "setattr" and not (isinstance(args[0], ast.Name) and args[0].id in ("self", "cls")):
                found.append((at, f"setattr({ast.unparse(args[0])}, ...)"))  # replacing another object's attribute
        elif isinstance(node, ast.Attribute) and node.attr == "MethodType":
            found.append((at, "types.MethodType"))
        elif isinstance(node, ast.ImportFrom) and not node.level and not (node.module or "").startswith("lva"):
            found += [(at, a.name) for a in node.names if private(a.name)]
        elif isinstance(node, ast.ClassDef) and any(ast.unparse(b).split(".")[0] in third for b in node.bases):
            found += [
                (at, f.name)
                for f in node.body
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                and f.name.startswith("_")
                and not f.name.startswith("__")
                and _overrides_third_party(path, node.name, f.name)
            ]
    return found


def test_the_scan_finds_private_names_and_replacements(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import gguf\nimport sys\nimport types\nfrom torch import nn\nfrom numpy import _core\n"
        "class R(gguf.GGUFReader):\n    def _get(self): ...\n"
        "gguf.GGUFReader = None\nsetattr(gguf, 'x', 1)\ny = getattr(nn, '_secret', 0)\n"
        "z = nn._private\nm = types.MethodType\nok = nn.Linear._replace\nsys.stdout = None\n"
        "for owner, name, value in []:\n    setattr(owner, name, value)\n"
    )
    found = sorted(what for _, what in third_party_private_uses(sample, set()))
    assert found == sorted(
        [
            "_core",
            "_get",
            "assigns gguf.GGUFReader",
            "setattr(gguf, ...)",
            "_secret",
            "_private",
            "types.MethodType",
            "setattr(owner, ...)",
        ]
    )
    ours = {"_secret", "_private", "_core", "_get"}  # names lva defines are not flagged; replacements still are
    assert sorted(what for _, what in third_party_private_uses(sample, ours)) == [
        "_get",
        "assigns gguf.GGUFReader",
        "setattr(gguf, ...)",
        "setattr(owner, ...)",
        "types.MethodType",
    ]


def test_only_the_patches_module_touches_third_party_private_names():
    """Other packages' internals are used in ``lva/patches.py`` alone, where each is named, pinned and
    tested (tests/test_patches.py): an upgrade cannot break them silently elsewhere."""
    ours = _lva_private_names()
    uses = [
        (at, what)
        for path in sorted(SRC.rglob("*.py"))
        if path != PATCHES_MODULE
        for at, what in third_party_private_uses(path, ours)
    ]
    found = [f"{at} {what}" for at, what in uses if (at.partition(":")[0], what) not in ALLOWED_PRIVATE_USES]
    assert not found, "third-party internals used outside lva/patches.py (move them there): " + "; ".join(found)
    used = {(at.partition(":")[0], what) for at, what in uses}
    stale = [key for key in ALLOWED_PRIVATE_USES if key not in used]
    assert not stale, f"ALLOWED_PRIVATE_USES entries no longer used (remove them): {stale}"
    assert PATCHES_MODULE.exists() and third_party_private_uses(PATCHES_MODULE, ours)  # the scan sees the patches
