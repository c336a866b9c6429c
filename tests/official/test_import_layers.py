"""Imports point down: base -> modeling -> core -> task families -> entry points.

Walks every module of `official/` with `ast` (imports inside functions
included, docstring examples excluded) and fails on an import that points up.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What each floor may import from this repository (prefixes of module names).
ALLOWED = {
    "official.base": ("official.base",),
    "official.modeling": ("official.base", "official.modeling"),
    "official.datasets": ("official.datasets",),
    "official.core": ("official.base", "official.modeling", "official.core"),
    "official.testing": ("official.base", "official.modeling", "official.testing"),
}
# Task families import the floors below them and themselves, never each other.
FAMILY_BELOW = (
    "official.base",
    "official.modeling",
    "official.core",
    "official.datasets",
)
FAMILIES = ("official.vision", "official.nlp", "official.llm")
# No TensorFlow or Keras in the lowest floor.
BASE_FORBIDDEN_THIRD_PARTY = ("tensorflow", "keras", "numpy")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            # `from official.core import trainer` imports official.core.trainer.
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _allowed_for(module: str):
    for floor, allowed in ALLOWED.items():
        if _within(module, (floor,)):
            return allowed
    for family in FAMILIES:
        if _within(module, (family,)):
            return FAMILY_BELOW + (family,)
    return None  # entry points: official.train, official.registry_imports


def _violations() -> list[str]:
    found = []
    for path in sorted((ROOT / "official").rglob("*.py")):
        module = _module_name(path)
        allowed = _allowed_for(module)
        for line, name in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if _within(name, ("serving", "tools", "configs", "tests")):
                found.append(f"{where} imports {name} (official never imports it)")
            if allowed is None or not _within(name, ("official",)):
                if _within(module, ("official.base",)) and _within(
                    name, BASE_FORBIDDEN_THIRD_PARTY
                ):
                    found.append(f"{where} imports {name} (base has no TF/Keras)")
                continue
            if name == "official" or _within(name, allowed):
                continue
            found.append(f"{where} imports {name}, above {module}'s floor")
    return found


def test_imports_point_down():
    violations = _violations()
    assert not violations, "Imports that point up:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "module, name, ok",
    [
        ("official.core.trainer", "official.vision.tasks", False),
        ("official.core.trainer", "official.registry_imports", False),
        ("official.modeling.layers.conv2d", "official.core.config_loader", False),
        ("official.modeling.layers.conv2d", "official.base.registries", True),
        ("official.vision.tasks.x", "official.core.trainer", True),
        ("official.vision.tasks.x", "official.nlp.encoders", False),
        ("official.base.config", "official.modeling", False),
    ],
)
def test_the_rule_itself(module, name, ok):
    allowed = _allowed_for(module)
    assert (name == "official" or _within(name, allowed)) is ok


def test_walker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        '"""Example:\n    import official.vision\n"""\n'
        "def f():\n    from official.vision import tasks\n"
    )
    names = [name for _, name in _imports(source)]
    assert "official.vision.tasks" in names  # inside a function: seen
    assert "official.vision" in names  # the `from` module itself
    assert len([n for n in names if n == "official.vision"]) == 1  # docstring: not
