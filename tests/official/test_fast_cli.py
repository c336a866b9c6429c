"""A fast command line and quiet logs.

`official.train --help`, `--experiment=list` and a mistyped config key are
answered without importing TensorFlow or Keras (checked through `sys.modules`
in a fresh process, never by timing); TensorFlow's per-save INFO lines are
dropped around saves only; the learning-rate scaling is logged only when
training; LiteRT's XNNPACK notice is dropped around the interpreter's first
allocation only.
"""

import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import pytest
import tensorflow as tf

from official.core import checkpoints, task_factory
from official.core.config_loader import load_experiment_config
from official.core.trainer import Trainer
from official.modeling.optimization import optimizer_factory
from official.modeling.optimization.optimization_config import (
    LearningRateConfig,
    OptimizationConfig,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "keras")

# Runs the binary's entry point with the given arguments, then says on the
# last line of stderr which heavy modules were imported.
_WRAPPER = textwrap.dedent(
    """
    import sys
    from official import train
    code = 0
    try:
        train.run()
    except SystemExit as e:
        code = e.code
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    print("heavy imports:", heavy, file=sys.stderr)
    sys.exit(code)
    """
).format(heavy=HEAVY)


def _run_train(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr


def _heavy_imports(stderr):
    return stderr.strip().splitlines()[-1]


def test_help_imports_no_tensorflow():
    code, out, err = _run_train("--help")
    assert "--experiment" in out + err and "--params_override" in out + err
    assert "python -m official.train --experiment=resnet_digits" in out + err
    assert _heavy_imports(err) == "heavy imports: []", err
    assert code in (0, 1)  # absl's --help exits 1.


def test_experiment_list_imports_no_tensorflow():
    code, out, err = _run_train("--experiment=list")
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"resnet_digits", "resnet_imagenet", "vit_imagenet"} <= set(names)
    assert "deeplabv3_shapes" in names
    assert _heavy_imports(err) == "heavy imports: []", err


def test_mistyped_key_is_named_without_tensorflow(tmp_path):
    model_dir = tmp_path / "run"
    code, _, err = _run_train(
        "--experiment=resnet_imagenet",
        f"--model_dir={model_dir}",
        "--params_override=task.train_data.global_batch_sise=8",
    )
    assert code == 1
    assert (
        "Unknown config key 'task.train_data.global_batch_sise'. Did you mean "
        "'global_batch_size'?" in err
    )
    assert _heavy_imports(err) == "heavy imports: []", err
    assert not model_dir.exists()


def test_registered_experiments_import_no_tensorflow():
    code = (
        "import sys, official.registry_configs, official.core.config_loader\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.strip() == "[]"


# ---- TensorFlow's per-save INFO lines ------------------------------------


def _absl_messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "absl"]


def test_save_notices_are_dropped_inside_the_block_only(caplog):
    absl_logger = logging.getLogger("absl")
    kept = [
        "Saved checkpoint /tmp/run/ckpt-5.",
        "Sharding callback duration: slow",
        "Writing fingerprint",
    ]
    with caplog.at_level(logging.INFO, logger="absl"):
        with checkpoints.without_save_notices():
            absl_logger.info("Sharding callback duration: %s microseconds", 42)
            absl_logger.info("Writing fingerprint to %s", "/tmp/m/fingerprint.pb")
            absl_logger.warning("Writing fingerprint to %s", "/tmp/x")  # A warning.
            for message in kept:
                absl_logger.info("%s", message)
        absl_logger.info("Sharding callback duration: %s microseconds", 7)
    assert _absl_messages(caplog) == [
        "Writing fingerprint to /tmp/x",
        *kept,
        "Sharding callback duration: 7 microseconds",
    ]
    assert not absl_logger.filters


def test_a_checkpoint_save_logs_its_notice_only_outside_the_block(caplog, tmp_path):
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    with caplog.at_level(logging.INFO, logger="absl"):
        checkpoint.write(str(tmp_path / "outside"))
        outside = _absl_messages(caplog)
        caplog.clear()
        with checkpoints.without_save_notices():
            checkpoint.write(str(tmp_path / "inside"))
        inside = _absl_messages(caplog)
    # TensorFlow still logs the line this filter is written for.
    assert any(m.startswith("Sharding callback duration") for m in outside), outside
    assert not any(checkpoints.SAVE_NOTICES.fullmatch(m) for m in inside), inside


# ---- the learning-rate scaling ---------------------------------------------


def _scaled_config():
    return OptimizationConfig(
        learning_rate=LearningRateConfig("constant", {"learning_rate": 1.6}),
        reference_batch_size=4096,
    )


def _scaling_lines(caplog):
    return [m for m in _absl_messages(caplog) if m.startswith("Learning rate scaled")]


def test_scaling_is_logged_only_when_asked(caplog):
    with caplog.at_level(logging.INFO, logger="absl"):
        quiet = optimizer_factory.scale_learning_rate(_scaled_config(), 256, log=False)
        assert _scaling_lines(caplog) == []
        loud = optimizer_factory.scale_learning_rate(_scaled_config(), 256)
    assert quiet.learning_rate.params == loud.learning_rate.params
    assert quiet.learning_rate.params["learning_rate"] == pytest.approx(0.1)
    assert len(_scaling_lines(caplog)) == 1


@pytest.mark.parametrize("training", [True, False])
def test_trainer_logs_the_scaling_only_when_training(caplog, training):
    cfg = load_experiment_config(
        "resnet_digits",
        params_override={
            "task.model.backbone.params.width_multiplier": 0.125,
            "trainer.optimizer_config.reference_batch_size": 128,
        },
    )
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with caplog.at_level(logging.INFO, logger="absl"):
        trainer = Trainer(
            cfg,
            task_factory.get_task(cfg.task),
            tempfile.mkdtemp(),
            strategy,
            training=training,
        )
    trainer.close()
    assert len(_scaling_lines(caplog)) == (1 if training else 0)


# ---- LiteRT's XNNPACK notice ---------------------------------------------

_TFLITE_RUN = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    from serving import tflite_export

    class Double(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x * 2.0}

    tflite_export._xnnpack_noticed = {noticed}  # True: as if after the first run.
    module = Double()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)
    content = converter.convert()
    for _ in range(2):
        out = tflite_export.run(content, {"x": np.ones((3, 4), np.float32)})
    assert out["y"].shape == (3, 4), out
    print("ran", flush=True)
    """
)


@pytest.mark.slow  # A fresh process: the notice is printed once per process.
@pytest.mark.parametrize("filtered", [True, False])
def test_tflite_run_drops_the_xnnpack_notice_only(filtered):
    script = _TFLITE_RUN.replace("{noticed}", str(not filtered))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran"
    # Unfiltered (the control), LiteRT still prints the line filtered here.
    assert ("XNNPACK delegate" in result.stderr) != filtered, result.stderr
