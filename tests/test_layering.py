"""The package's layers (docs/architecture.md): every ``import`` of a gnnagg
module names a lower layer, and importing gnnagg loads nothing heavy."""
import ast
import subprocess
import sys
from pathlib import Path

import gnnagg

ROOT = Path(gnnagg.__file__).parent

#: layer of each top-level part of the package
LAYERS = {
    "_backend": -1, "utils": 0, "metrics": 0,
    "ops": 1, "datasets": 1, "distributed": 1,
    "aggr": 2, "text": 2,
    "nn": 3, "swap": 3, "testing": 3,
    "models": 4,
    "train": 5, "bench": 5,
    "sweeps": 6,
    "experiments": 7,
    "cli": 8, "__main__": 9,
}


def _part(module: str) -> str:
    return module.split(".")[1] if module.startswith("gnnagg.") else module


def _imports(path: Path):
    """(line, imported gnnagg module) for every import in the file."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    package = list(rel.parts[:-1])
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gnnagg"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from . import x
                    for alias in node.names:
                        yield node.lineno, f"{name}.{alias.name}"
                    continue
            else:
                name = node.module or ""
            if name.startswith("gnnagg"):
                yield node.lineno, name


def test_every_import_goes_down():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _part(".".join(path.relative_to(ROOT.parent).with_suffix("").parts))
        if own == "__init__":
            continue  # the package root only names submodules lazily
        assert own in LAYERS, f"{path}: add '{own}' to LAYERS (and docs/architecture.md)"
        for line, module in _imports(path):
            other = _part(module)
            if other in ("gnnagg", own):
                continue
            if LAYERS[other] >= LAYERS[own]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} ({own}, layer "
                           f"{LAYERS[own]}) imports {module} (layer {LAYERS[other]})")
    assert not bad, "imports that do not go down a layer:\n" + "\n".join(bad)


def test_import_is_light_and_has_no_side_effects():
    code = ("import os, sys; before = dict(os.environ); import gnnagg, gnnagg.cli, "
            "gnnagg.experiments.common; "
            "print(sorted(m for m in ('torch', 'torch_geometric', 'numpy') if m in sys.modules)); "
            "print(dict(os.environ) == before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"
