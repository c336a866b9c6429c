"""The layers and backbones run on the JAX backend (one subprocess per part).

The check itself is `tests/official/jax_backend_contract.py`: for every layer
in `official.modeling.layers` and every registered backbone, a forward pass
computed by JAX, `get_config` -> `from_config` and `.keras` save/load with
equal outputs.
"""

import os
import subprocess
import sys

import pytest

pytest.importorskip("jax", reason="jax[cpu] is in the dev extra: pip install -e .[dev]")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "official", "jax_backend_contract.py")


def _run(part, timeout):
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=ROOT,
    )
    result = subprocess.run(
        [sys.executable, SCRIPT, part],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "JAX CONTRACT PASSED" in result.stdout
    return result.stdout


@pytest.mark.slow  # a JAX process, ~30 s on 2 cores
def test_layers_on_jax():
    out = _run("layers", timeout=300)
    for name in ("ConvNormAct", "InvertedBottleneck", "TransformerEncoderBlock"):
        assert f"OK {name} " in out


@pytest.mark.slow
def test_backbones_on_jax():
    out = _run("backbones", timeout=600)
    for name in ("efficientnet", "mobilenet", "resnet", "vit"):
        assert f"OK backbone {name} " in out
