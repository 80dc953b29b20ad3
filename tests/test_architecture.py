"""The package's floors (docs/architecture.md): imports flow one way, applications use public names."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "antialias"

# Lowest floor first; a module may import from its floor and the floors below it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("filters", "_io", "files", "devices", "data"),
    ("layers",),
    (
        "_fx",
        "_edits",
        "_report",
        "_rewrite",
        "_invariance",
        "_transformers",
        "conversion",
        "models",
    ),
    ("datasets", "metrics", "train"),
    ("apps", "cli", "__main__"),
)


def _floor(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__init__":
        return None  # the package's facade re-exports from every floor below the applications
    for level, names in enumerate(FLOORS):
        if parts[1] in names:
            return level
    raise AssertionError(
        f"module {module} is on no floor: add it to FLOORS and docs/architecture.md"
    )


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every absolute import of ``antialias``, at any depth (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("antialias")
        ):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("antialias")]
    return found


def test_imports_never_go_up_a_floor():
    upward = []
    for module, path in _modules():
        level = _floor(module)
        for target, names in _imports(path):
            # ``from antialias import layers`` imports a module; ``from antialias import __version__`` does not.
            submodules = [
                n for n in names if (PACKAGE / n).is_dir() or (PACKAGE / f"{n}.py").is_file()
            ]
            targets = [target] + [f"{target}.{n}" for n in submodules if target == "antialias"]
            for t in targets:
                t_level = _floor(t) if t != "antialias" else None
                if level is not None and t_level is not None and t_level > level:
                    upward.append(f"{module} imports {t}")
    assert not upward, upward


def _resolve(target: str, names: list[str], known: set[str]) -> list[str]:
    """The package modules an import statement loads: ``from a import b`` loads ``a.b`` when that is a
    module, else ``a`` itself (a package's ``__init__``)."""
    out = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
    if len(out) < len(names) or not names:
        out.append(target)
    return [t for t in out if t in known]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (every import at any depth, lazy ones included; a
    package's implicit import of its parents is not an edge)."""
    modules = dict(_modules())
    return {
        module: {
            t
            for target, names in _imports(path)
            for t in _resolve(target, names, set(modules))
            if t != module
        }
        for module, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (``[a, b, ..., a]``), or ``[]``: every module on a floor of its own."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle_between_modules():
    # Finer than the floors: each file sits on a floor of its own, so no two modules import each other,
    # directly or around a loop (the rewriting engine below its public API module, for one).
    graph = import_graph()
    assert {"antialias.conversion", "antialias._rewrite", "antialias._report"} <= set(graph)
    assert "antialias._rewrite" in graph["antialias.conversion"]
    assert find_cycle(graph) == []


def test_cycle_check_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


APPLICATIONS = ("antialias.apps", "antialias.cli", "antialias.__main__")


def _private_imports(module: str, path: Path) -> list[str]:
    """The private names (``_x``, a dunder such as ``__version__`` aside) that ``module`` imports from outside its
    own package: an application uses the library's public names only."""
    own = ".".join(module.split(".")[:2])
    found = []
    for target, names in _imports(path):
        if target == own or target.startswith(f"{own}."):
            continue
        parts = target.split(".") + names
        if any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts):
            found.append(f"{module}: from {target} import {', '.join(names)}")
    return found


def test_applications_use_public_names_only():
    modules = [(m, p) for m, p in _modules() if m.startswith(APPLICATIONS)]
    assert {m.split(".")[1] for m, _ in modules} == {"apps", "cli", "__main__"}
    private = [line for module, path in modules for line in _private_imports(module, path)]
    assert not private, private


def test_public_names_check_sees_a_private_import(tmp_path):
    # The check above can fail: the CLI reaching into a private module of the zoo is caught, its own
    # package and ``__version__`` are not.
    fake = tmp_path / "x.py"
    fake.write_text(
        "from antialias import __version__\nfrom antialias.cli import _helper\n"
        "def f():\n    from antialias.models._head import classifier_name\n    from antialias.metrics import _x\n"
    )
    assert _private_imports("antialias.cli.x", fake) == [
        "antialias.cli.x: from antialias.models._head import classifier_name",
        "antialias.cli.x: from antialias.metrics import _x",
    ]


def test_floor_check_sees_an_upward_import(tmp_path):
    # The check above can fail: a layer importing the metrics is an upward arrow.
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    from antialias.metrics import accuracy\n")
    ((target, names),) = _imports(fake)
    assert _floor("antialias.layers.x") < _floor(target)


@pytest.mark.slow
def test_architecture_doc_examples_run():
    text = (ROOT / "docs" / "architecture.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 2
    # A fresh interpreter: the examples register a method and a model for good.
    code = "\n".join(blocks)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]


# ------------------------------------------------------------------------------------------------
# Tests mirror the package: antialias/<package>/<module>.py is tested in
# tests/<package>/test_<module>.py (nested packages joined with "_", leading underscores dropped: apps/demo/config.py
# -> tests/apps/test_demo_config.py); a module tested elsewhere is listed here, and that test module's docstring
# names it.
TESTED_IN = {
    "__main__.py": "tests/cli/test_info.py",
    "_io/lock.py": "tests/test_io.py",
    "_io/read.py": "tests/test_io.py",
    "_io/write.py": "tests/test_io.py",
    "_fx.py": "tests/convert/test_fx.py",
    "_edits.py": "tests/convert/test_edits.py",
    "_rewrite.py": "tests/convert/test_rewrite.py",
    "conversion.py": "tests/convert/test_convert.py",
    "_report.py": "tests/convert/test_convert.py",
    "_invariance.py": "tests/convert/test_invariance.py",
    "_transformers.py": "tests/convert/test_transformers.py",
    "data.py": "tests/test_image_folder.py",
    "cli/__init__.py": "tests/cli/test_info.py",
    "cli/demo.py": "tests/cli/test_demo_cli.py",
    "layers/_checks.py": "tests/layers/test_functional.py",
    "layers/_cpu.py": "tests/layers/test_functional.py",
    "layers/_polyphase_modules.py": "tests/layers/test_polyphase.py",
    "layers/_polyphase_ops.py": "tests/layers/test_polyphase.py",
    "layers/_triton/function.py": "tests/layers/test_triton.py",
    "layers/_triton/kernels.py": "tests/layers/test_triton.py",
    "layers/_triton/tables.py": "tests/layers/test_triton.py",
    **{
        f"models/{family}.py": "tests/models/test_families.py"
        for family in ("alexnet", "densenet", "mobilenet", "resnet", "vgg")
    },
}


def _mirror(relative: Path) -> str:
    parts = [p.lstrip("_") for p in relative.with_suffix("").parts]
    if len(parts) == 1:
        return f"tests/test_{parts[0]}.py"
    return f"tests/{parts[0]}/test_{'_'.join(parts[1:])}.py"


def test_every_module_has_its_test_module():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" and str(relative) not in TESTED_IN:
            continue  # a package's facade: its names are checked by tests/test_api.py
        test = TESTED_IN.get(str(relative), _mirror(relative))
        if not (ROOT / test).is_file():
            missing.append(f"{relative}: expected {test}")
        elif str(relative) in TESTED_IN:
            # the module, or its whole package when that is private (_io, _triton)
            names = {relative.stem} | (
                {relative.parent.name} if relative.parent.name.startswith("_") else set()
            )
            doc = ast.get_docstring(ast.parse((ROOT / test).read_text())) or ""
            if not any(name.lstrip("_") in doc for name in names):
                missing.append(f"{relative}: {test}'s docstring does not name it")
    assert not missing, missing


def test_mirror_rule():
    assert _mirror(Path("apps/demo/config.py")) == "tests/apps/test_demo_config.py"
    assert _mirror(Path("models/_weights.py")) == "tests/models/test_weights.py"
    assert _mirror(Path("filters.py")) == "tests/test_filters.py"
