"""The text encoder, heads and models run on the JAX backend (a subprocess)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("jax", reason="jax[cpu] is in the dev extra: pip install -e .[dev]")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
SCRIPT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "jax_text_contract.py"
)


@pytest.mark.slow  # a JAX process, ~20 s on 2 cores
def test_text_models_on_jax():
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.path.abspath(ROOT),
    )
    result = subprocess.run(
        [sys.executable, SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for name in ("BertEncoder", "BertClassifier", "BertPretrainer"):
        assert f"OK {name}" in result.stdout
    assert "JAX TEXT PASSED" in result.stdout
