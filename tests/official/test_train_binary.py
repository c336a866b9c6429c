"""The training binary and run_experiment end to end, on tiny settings.

In-process runs cover training; of the runs of the binary in a fresh process,
`--help` is the smoke test in `make test` and a training run is only in
`make test-all` (marked slow).
"""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from official import train
from official.core import checkpoints, distribute, task_factory
from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment
from official.core.trainer import Trainer


def _overrides(digits_dir, **extra):
    items = {
        "task.train_data.input_path": os.path.join(digits_dir, "train-*"),
        "task.validation_data.input_path": os.path.join(digits_dir, "validation-*"),
        "task.train_data.global_batch_size": 16,
        "task.validation_data.global_batch_size": 90,
        "task.model.backbone.params.width_multiplier": 0.125,
        "trainer.train_steps": 4,
        "trainer.steps_per_loop": 2,
        "trainer.checkpoint_interval": 2,
        "trainer.validation_interval": 4,
    }
    items.update(extra)
    return items


def _run_binary(argv, capsys):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", *argv])
    code = train.main([])
    return code, capsys.readouterr()


@pytest.mark.slow  # end to end, ~10 s on 2 cores
def test_train_resume_eval(digits_dir, tmp_path):
    model_dir = str(tmp_path / "model")
    cfg = load_experiment_config(
        "resnet_digits", params_override=_overrides(digits_dir)
    )
    logs = run_experiment(cfg, "train_and_eval", model_dir)
    assert set(logs) == {"loss", "accuracy", "top_2_accuracy"}
    assert checkpoints.checkpoint_step(tf.train.latest_checkpoint(model_dir)) == 4
    assert sorted(f for f in os.listdir(model_dir) if f.endswith(".index")) == [
        "ckpt-2.index",
        "ckpt-4.index",
    ]
    assert os.path.isdir(os.path.join(model_dir, "train"))
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        assert json.load(f)["step"] == 4

    # Resume: the same command with more steps continues from step 4.
    more = load_experiment_config(
        "resnet_digits",
        params_override=_overrides(digits_dir, **{"trainer.train_steps": 6}),
    )
    run_experiment(more, "train", model_dir)
    assert checkpoints.checkpoint_step(tf.train.latest_checkpoint(model_dir)) == 6

    # Eval restores the latest checkpoint and reproduces its metrics.
    first = run_experiment(more, "eval", model_dir)
    second = run_experiment(more, "eval", model_dir)
    np.testing.assert_allclose(first["accuracy"], second["accuracy"])
    np.testing.assert_allclose(first["loss"], second["loss"], rtol=1e-5)

    # params.yaml alone, with the same experiment, reproduces the config.
    again = load_experiment_config(
        "resnet_digits", [os.path.join(model_dir, "params.yaml")]
    )
    assert again == more


@pytest.mark.slow  # end to end, ~10 s on 2 cores
def test_mirrored_two_replicas(digits_dir, tmp_path):
    assert len(tf.config.list_logical_devices("CPU")) == 2
    model_dir = str(tmp_path / "m")
    cfg = load_experiment_config(
        "resnet_digits",
        params_override=_overrides(
            digits_dir,
            **{
                "runtime.distribution_strategy": "mirrored",
                "trainer.train_steps": 2,
                "trainer.validation_interval": 2,
            },
        ),
    )
    logs = run_experiment(cfg, "train_and_eval", model_dir)
    assert np.isfinite(logs["loss"])

    # Every replica's examples are counted exactly once, and the metrics equal
    # those of one device on the same checkpoint.
    results = {}
    for name in ("mirrored", "one_device"):
        strategy = distribute.get_strategy(name)
        trainer = Trainer(cfg, task_factory.get_task(cfg.task), model_dir, strategy)
        trainer.restore(tf.train.latest_checkpoint(model_dir))
        trainer.evaluate(trainer.distribute_inputs(cfg.task.validation_data))
        accuracy = trainer.eval_metrics[0]
        correct, seen = (float(v.numpy()) for v in accuracy.variables)
        assert seen == 360
        results[name] = correct
    assert strategy.num_replicas_in_sync == 1
    assert abs(results["mirrored"] - results["one_device"]) <= 1  # near-ties


def test_binary_bad_input_leaves_nothing(digits_dir, tmp_path, capsys):
    model_dir = tmp_path / "never"
    code, out = _run_binary(
        [
            "--experiment=resnet_digits",
            f"--model_dir={model_dir}",
            "--params_override=task.train_data.input_path=/nonexistent/train-*,"
            f"task.validation_data.input_path={digits_dir}/validation-*",
        ],
        capsys,
    )
    assert code == 1
    assert "/nonexistent/train-*" in out.err
    assert not model_dir.exists()


def test_binary_config_errors(tmp_path, capsys):
    code, out = _run_binary(
        ["--experiment=resnet_digit", f"--model_dir={tmp_path}"], capsys
    )
    assert code == 1
    assert "Did you mean 'resnet_digits'?" in out.err
    assert "resnet_imagenet" in out.err

    code, out = _run_binary(
        [
            "--experiment=resnet_digits",
            f"--model_dir={tmp_path}/x",
            "--params_override=trainer.train_step=3",
        ],
        capsys,
    )
    assert code == 1
    assert (
        "Unknown config key 'trainer.train_step'. Did you mean 'train_steps'?"
        in out.err
    )
    assert not (tmp_path / "x").exists()

    # resnet_imagenet's defaults point at no storage: the error says what to set.
    code, out = _run_binary(
        ["--experiment=resnet_imagenet", f"--model_dir={tmp_path}/y"], capsys
    )
    assert code == 1
    assert "task.train_data.input_path=" in out.err


def test_binary_eval_without_checkpoint(digits_dir, tmp_path, capsys):
    code, out = _run_binary(
        [
            "--experiment=resnet_digits",
            "--mode=eval",
            f"--model_dir={tmp_path}/empty",
            f"--params_override=task.train_data.input_path={digits_dir}/train-*,"
            f"task.validation_data.input_path={digits_dir}/validation-*",
        ],
        capsys,
    )
    assert code == 1
    assert "contains no checkpoint" in out.err or "does not exist" in out.err
    assert not (tmp_path / "empty").exists()


def test_binary_lists_experiments(capsys):
    code, out = _run_binary(["--experiment=list"], capsys)
    assert code == 0
    assert "resnet_imagenet" in out.out and "resnet_digits" in out.out


@pytest.mark.slow  # A training run in a fresh process: 10-18 s on 2 cores.
def test_binary_starts_quietly_and_exits_promptly(digits_dir, tmp_path):
    import subprocess
    import sys
    import time

    command = [
        sys.executable,
        "-m",
        "official.train",
        "--experiment=resnet_digits",
        f"--model_dir={tmp_path / 'run'}",
        "--params_override="
        + ",".join(
            f"{k}={v}"
            for k, v in _overrides(
                digits_dir, **{"trainer.validation_interval": 0}
            ).items()
        ),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    finished_at = None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "Training finished" in line:
            finished_at = time.monotonic()
    process.wait(timeout=120)
    exited_at = time.monotonic()
    output = "".join(lines)
    assert process.returncode == 0, output[-3000:]
    assert finished_at is not None
    assert exited_at - finished_at < 15, output[-2000:]
    # No CUDA-driver noise on a machine without a GPU; one line names the strategy.
    assert "cuda" not in output.lower()
    assert "Strategy one_device with 1 replica(s)" in output
    # Throughput with three significant figures and an ETA.
    assert re.search(r"\d\.?\d* examples/s \| [\d.e+-]+ s/step \| ETA \d+:\d\d", output)


def test_binary_help_lists_flags_and_an_example():
    """The fast smoke test of `python -m official.train` in `make test`."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "official.train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = result.stdout + result.stderr
    for flag in (
        "--experiment",
        "--mode",
        "--model_dir",
        "--config_file",
        "--params_override",
    ):
        assert flag in text
    assert "python -m official.train --experiment=resnet_digits" in text
