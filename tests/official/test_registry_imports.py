"""Every module that registers a name is listed in official/registry_imports.py,
every module that registers an experiment in official/registry_configs.py
(which `official.registry_imports` imports first, and which imports no
TensorFlow: tests/official/test_fast_cli.py)."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
# A decorator (`@BACKBONES.register(`, `@register_task(`) or a plain call
# (`OPTIMIZERS.register("sgd")(...)`) at the start of a line.
REGISTERS = re.compile(
    r"^(?:@?[A-Z_]+\.register|@register_experiment|@register_task)\(", re.M
)
REGISTERS_EXPERIMENT = re.compile(r"^@register_experiment\(", re.M)
# The registry class itself, whose docstring shows a registration.
NOT_REGISTERING = {"official/base/registry.py"}


def test_every_registering_module_is_imported():
    configs = (ROOT / "official" / "registry_configs.py").read_text()
    listed = (ROOT / "official" / "registry_imports.py").read_text() + configs
    assert "import official.registry_configs" in listed
    missing = []
    misplaced = []
    for path in sorted((ROOT / "official").rglob("*.py")):
        if str(path.relative_to(ROOT)) in NOT_REGISTERING:
            continue
        if REGISTERS.search(path.read_text()):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if f"import {module}" not in listed:
                missing.append(module)
            elif REGISTERS_EXPERIMENT.search(path.read_text()) and (
                f"import {module}" not in configs
            ):
                misplaced.append(module)
    assert not missing, f"Add to official/registry_imports.py: {missing}"
    assert not misplaced, (
        f"Experiments are registered without TensorFlow: move {misplaced} to "
        "official/registry_configs.py (and keep TensorFlow and Keras imports out "
        "of module level there)."
    )
