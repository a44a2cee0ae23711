"""The layers of ``eemt_flow`` (docs/architecture.md), checked from every module's imports.

Each module's source is parsed with :mod:`ast` and every ``import`` in it is collected, at
the top of the file or inside a function, relative ones resolved against the module's
package. No module is imported, so the check sees imports that only run on some paths.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "eemt_flow"

#: What each layer may import from eemt_flow (its own modules are always allowed).
#: "shared" are the top-level modules every layer may use: the version, errors, processes.
SHARED = {"eemt_flow", "eemt_flow.errors", "eemt_flow.processes"}
SCIENCE = {"model", "solar", "terrain", "climate"}
MACHINERY = {"workflow", "web", "cli", "cli_options", "eemt"}
ALLOWED = {
    "model": {"model"},
    "dem": {"dem", "model", "shared"},
    "terrain": {"terrain", "model", "dem", "shared"},
    "solar": {"solar", "model", "dem", "terrain", "shared"},
    "climate": {"climate", "model", "dem", "solar", "shared"},
    "workflow": {"workflow", "model", "dem", "terrain", "solar", "climate", "shared"},
    "web": {"web", "workflow", "model", "dem", "terrain", "solar", "climate", "shared"},
    "shared": {"shared"},
}
#: The modules at the top of eemt_flow/: the entry points (cli and its options, the notebook
#: facade eemt.compute) and the shared ones. At most 7 (issue 23).
TOP_LEVEL = {"__init__", "cli", "cli_options", "eemt", "errors", "processes"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every eemt_flow module ``source`` imports, anywhere in the file."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            # "from eemt_flow import workflow" imports the package eemt_flow.workflow
            found.update(f"{target}.{alias.name}" for alias in node.names
                         if (PACKAGE.parent / target.replace(".", "/") / alias.name).is_dir())
    return {m for m in found if m == "eemt_flow" or m.startswith("eemt_flow.")}


def layer_of(module: str) -> str:
    if module in SHARED:
        return "shared"
    return module.split(".")[1]


def violations(module: str, imports: set[str]) -> list[str]:
    own = layer_of(module)
    allowed = ALLOWED.get(own)
    if allowed is None:  # the entry points at the top may use every layer
        return []
    return sorted(f"{module} imports {m}" for m in imports if layer_of(m) not in allowed)


def all_modules() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p.read_text(), module_name(p), p.name == "__init__.py")
            for p in sorted(PACKAGE.rglob("*.py"))}


def test_no_layer_reaches_up():
    modules = all_modules()
    found = [v for module, imports in modules.items() for v in violations(module, imports)]
    assert found == []
    # the walk sees every module (81 files today) and the edges it must between layers
    assert len(modules) >= 80
    assert "eemt_flow.solar.parameters" in modules["eemt_flow.workflow.spec"]
    assert "eemt_flow.terrain.heap" in modules["eemt_flow.terrain.tiled"]
    assert "eemt_flow.dem.raster" in modules["eemt_flow.solar.api"]


def test_model_imports_only_model():
    modules = all_modules()
    model = {m: imports for m, imports in modules.items() if layer_of(m) == "model"}
    assert len(model) == 11  # __init__ and ten modules of equations
    outside = {m: sorted(i for i in imports if not i.startswith("eemt_flow.model")) for m, imports in model.items()}
    assert {m: i for m, i in outside.items() if i} == {}


def test_science_never_imports_the_machinery():
    modules = all_modules()
    science = {m: imports for m, imports in modules.items() if layer_of(m) in SCIENCE | {"dem"}}
    assert len(science) >= 45
    reaching = sorted(f"{m} -> {i}" for m, imports in science.items() for i in imports
                      if i.split(".")[1:2] and i.split(".")[1] in MACHINERY)
    assert reaching == []


def test_the_walk_finds_imports_inside_functions_and_relative_ones():
    # a science module that reaches up only inside a function, and through a relative import
    source = ("import numpy as np\n"
              "def f():\n"
              "    from eemt_flow.workflow.plan import plan\n"
              "    from ..web import app\n"
              "    from . import sun\n")
    imports = imported_modules(source, "eemt_flow.solar.example", is_package=False)
    assert imports == {"eemt_flow.workflow.plan", "eemt_flow.web", "eemt_flow.solar"}
    assert violations("eemt_flow.solar.example", imports) == [
        "eemt_flow.solar.example imports eemt_flow.web",
        "eemt_flow.solar.example imports eemt_flow.workflow.plan",
    ]
    assert violations("eemt_flow.model.example", {"eemt_flow.errors"}) == [
        "eemt_flow.model.example imports eemt_flow.errors"]


def test_at_most_seven_modules_at_the_top():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL
    assert len(top) == 6 <= 7
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"model", "solar", "terrain", "climate", "dem", "workflow", "web"}
