"""Runs every ```python block in the docstrings under official/ and serving/ (R14)."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


PACKAGES = ("official", "serving")


def _examples():
    paths = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    for path in sorted(paths):
        tree = ast.parse(path.read_text())
        nodes = [tree] + [
            n
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        ]
        for node in nodes:
            doc = ast.get_docstring(node)
            if not doc:
                continue
            for i, block in enumerate(BLOCK.findall(doc)):
                name = getattr(node, "name", "<module>")
                rel = path.relative_to(ROOT)
                yield pytest.param(block, id=f"{rel}:{name}:{i}")


@pytest.mark.parametrize("code", list(_examples()))
def test_docstring_example_runs(code, tmp_path, monkeypatch):
    import textwrap

    monkeypatch.chdir(tmp_path)
    exec(compile(textwrap.dedent(code), "<docstring>", "exec"), {})
