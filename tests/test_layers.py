"""Imports only look down: every module of the package imports from its own layer or lower ones.

The layers, lowest first. A module belongs to the layer of the longest name below that prefixes it;
the package root ``sentitune`` (``load``, ``DEFAULT_MODEL_PATH``) matches only itself: it sits just
above methods/, whose registry ``load`` dispatches through, so evaluation/, serving/ and up may call
``sentitune.load`` while artifact.py may not import the root (the version lives in ``_version``).
Function-level imports count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sentitune
from sentitune.methods import METHODS

PACKAGE = Path(sentitune.__file__).parent
LAYERS: list[set[str]] = [
    # foundation; card renders README.md from metadata for artifact.py, importing only the foundation
    {"sentitune.errors", "sentitune.config", "sentitune.atomic", "sentitune._version", "sentitune.card"},
    {"sentitune.artifact"},
    {"sentitune.zoo"},
    {"sentitune.presets"},  # preset names -> artifact directories, read by load
    {"sentitune.data"},
    {"sentitune.methods"},
    {"sentitune"},
    {"sentitune.evaluation"},
    {"sentitune.serving", "sentitune.export", "sentitune.scale"},
    {"sentitune.training"},
    {"sentitune.cli", "sentitune.__main__", "sentitune.repl"},  # the command line (repl: predict --interactive)
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    if module == "sentitune":
        return next(i for i, names in enumerate(LAYERS) if "sentitune" in names)
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for i, names in enumerate(LAYERS):
        for name in names - {"sentitune"}:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), i)
    return best[1] if best else None


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, sentitune module) for every import in ``path``, at any depth of the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from sentitune import cli` imports the module sentitune.cli
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if sub in MODULES else base))
    return [(line, name) for line, name in found if name == "sentitune" or name.startswith("sentitune.")]


def test_every_module_has_a_layer():
    """A new top-level module must be placed in LAYERS (its imports are only checked once it is)."""
    assert not [m for m in MODULES if layer_of(m) is None]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) is not None))
def test_imports_only_look_down(module):
    own = layer_of(module)
    upward = [
        f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {target} (layer {layer_of(target)} > {own})"
        for line, target in imported_modules(MODULES[module], module)
        if layer_of(target) is not None and layer_of(target) > own
    ]
    assert not upward, "\n".join(upward)


def test_method_registry_names_only_method_modules():
    """The registry imports its classes by name at run time, which the ast walk cannot see."""
    methods = layer_of("sentitune.methods")
    assert {name: t for name, t in METHODS.items() if layer_of(t.split(":")[0]) != methods} == {}


def test_the_checker_sees_a_function_level_upward_import(tmp_path):
    """The walk finds an import inside a function body: the form most upward imports took."""
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from sentitune.evaluation.metrics import classification_metrics\n")
    assert imported_modules(source, "sentitune.methods.sample") == [(2, "sentitune.evaluation.metrics")]
    assert layer_of("sentitune.evaluation.metrics") > layer_of("sentitune.methods.sample")
