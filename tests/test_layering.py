"""The package is layered: engine (nn) < neutral helpers (common) < techniques (prune, ...) <
around (datasets, report, cli). A module may import only from its own layer or below, and no
technique package imports another one."""

import ast
import sys
from pathlib import Path

import tinyprune

PKG = Path(tinyprune.__file__).parent
LAYER = {"nn": 1, "common": 1.5, "prune": 2, "quantize": 2, "lowrank": 2, "distill": 2, "size": 2,
         "datasets": 3, "report": 3, "viz": 3, "grading": 3, "cli": 3, "__main__": 3,
         "pipeline": 3}


TECHNIQUES = ("prune", "quantize", "lowrank", "distill", "size")


def _layer_of(parts: list[str]) -> float:
    if not parts:
        return 3
    return LAYER.get(parts[0], 3)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PKG).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: len(rel) - node.level])
                target = base + (node.module.split(".") if node.module else [])
                if not node.module:
                    for alias in node.names:
                        yield target + [alias.name]
                    continue
                yield target
            elif node.module and node.module.startswith("tinyprune"):
                yield node.module.split(".")[1:]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tinyprune"):
                    yield alias.name.split(".")[1:]


def test_no_module_imports_from_a_higher_layer():
    violations = []
    for path in PKG.rglob("*.py"):
        rel = list(path.relative_to(PKG).with_suffix("").parts)
        own = _layer_of(rel) if rel != ["__init__"] else 3
        for target in _imports(path):
            if _layer_of(target) > own:
                violations.append(f"{path.relative_to(PKG)} imports tinyprune.{'.'.join(target)}")
    assert violations == []


def test_no_technique_package_imports_another():
    violations = []
    for path in PKG.rglob("*.py"):
        rel = list(path.relative_to(PKG).with_suffix("").parts)
        if rel[0] not in TECHNIQUES:
            continue
        for target in _imports(path):
            if target and target[0] in TECHNIQUES and target[0] != rel[0]:
                violations.append(f"{path.relative_to(PKG)} imports tinyprune.{'.'.join(target)}")
    assert violations == []


def test_common_imports_only_the_engine():
    for path in (PKG / "common").rglob("*.py"):
        for target in _imports(path):
            assert target[:1] in (["nn"], ["common"]), f"{path.name} imports {target}"


def test_layer_table_covers_every_top_level_entry():
    entries = {p.stem for p in PKG.iterdir() if p.suffix == ".py" or (p.is_dir() and
                                                                      (p / "__init__.py").exists())}
    entries.discard("__init__")
    assert entries <= set(LAYER), f"add {entries - set(LAYER)} to the layer table"


def test_engine_imports_only_numpy_and_stdlib():
    allowed = set(sys.stdlib_module_names) | {"numpy", "tqdm"}
    for path in (PKG / "nn").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            for n in names:
                assert n in allowed or n == "tinyprune", f"{path.name} imports {n}"


def test_only_viz_and_cli_draw():
    """Technique packages, the engine and the neutral helpers never import matplotlib: drawing
    lives in tinyprune.viz (the command line only saves its figures)."""
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        if rel[0] in ("viz", "cli"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "matplotlib" for n in names), \
                f"{path.relative_to(PKG)} imports matplotlib: move the figure into tinyprune.viz"
