"""The training binary and run_experiment end to end, on tiny settings."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from official import train
from official.core import checkpoints
from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment


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


def test_train_resume_eval(digits_dir, tmp_path):
    model_dir = str(tmp_path / "model")
    cfg = load_experiment_config("resnet_digits", params_override=_overrides(digits_dir))
    logs = run_experiment(cfg, "train_and_eval", model_dir)
    assert set(logs) == {"loss", "accuracy", "top_2_accuracy"}
    assert checkpoints.checkpoint_step(tf.train.latest_checkpoint(model_dir)) == 4
    assert sorted(f for f in os.listdir(model_dir) if f.endswith(".index")) == [
        "ckpt-2.index", "ckpt-4.index"]
    assert os.path.isdir(os.path.join(model_dir, "train"))
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        assert json.load(f)["step"] == 4

    # Resume: the same command with more steps continues from step 4.
    more = load_experiment_config(
        "resnet_digits", params_override=_overrides(digits_dir, **{"trainer.train_steps": 6}))
    run_experiment(more, "train", model_dir)
    assert checkpoints.checkpoint_step(tf.train.latest_checkpoint(model_dir)) == 6

    # Eval restores the latest checkpoint and reproduces its metrics.
    first = run_experiment(more, "eval", model_dir)
    second = run_experiment(more, "eval", model_dir)
    np.testing.assert_allclose(first["accuracy"], second["accuracy"])
    np.testing.assert_allclose(first["loss"], second["loss"], rtol=1e-5)

    # params.yaml alone, with the same experiment, reproduces the config.
    again = load_experiment_config(
        "resnet_digits", [os.path.join(model_dir, "params.yaml")])
    assert again == more


def test_mirrored_two_replicas(digits_dir, tmp_path):
    assert len(tf.config.list_logical_devices("CPU")) == 2
    model_dir = str(tmp_path / "m")
    mirrored = load_experiment_config("resnet_digits", params_override=_overrides(
        digits_dir, **{"runtime.distribution_strategy": "mirrored",
                       "trainer.train_steps": 2, "trainer.validation_interval": 2}))
    logs = run_experiment(mirrored, "train_and_eval", model_dir)
    assert np.isfinite(logs["loss"])
    # The same checkpoint evaluated on one device gives the same metrics: every
    # replica's examples are counted exactly once. (A barely trained model has
    # near-ties that per-replica batch shapes may flip: allow one example.)
    single = mirrored.copy()
    single.runtime.distribution_strategy = "one_device"
    one = run_experiment(single, "eval", model_dir)
    one_example = 1 / 360
    np.testing.assert_allclose(logs["accuracy"], one["accuracy"], atol=one_example)
    np.testing.assert_allclose(logs["top_2_accuracy"], one["top_2_accuracy"], atol=one_example)
    np.testing.assert_allclose(logs["loss"], one["loss"], rtol=1e-2)


def test_binary_bad_input_leaves_nothing(digits_dir, tmp_path, capsys):
    model_dir = tmp_path / "never"
    code, out = _run_binary([
        "--experiment=resnet_digits", f"--model_dir={model_dir}",
        "--params_override=task.train_data.input_path=/nonexistent/train-*,"
        f"task.validation_data.input_path={digits_dir}/validation-*",
    ], capsys)
    assert code == 1
    assert "/nonexistent/train-*" in out.err
    assert not model_dir.exists()


def test_binary_config_errors(tmp_path, capsys):
    code, out = _run_binary(
        ["--experiment=resnet_digit", f"--model_dir={tmp_path}"], capsys)
    assert code == 1
    assert "Did you mean 'resnet_digits'?" in out.err
    assert "resnet_imagenet" in out.err

    code, out = _run_binary([
        "--experiment=resnet_digits", f"--model_dir={tmp_path}/x",
        "--params_override=trainer.train_step=3"], capsys)
    assert code == 1
    assert "Unknown config key 'trainer.train_step'. Did you mean 'train_steps'?" in out.err
    assert not (tmp_path / "x").exists()

    # resnet_imagenet's defaults point at no storage: the error says what to set.
    code, out = _run_binary(
        ["--experiment=resnet_imagenet", f"--model_dir={tmp_path}/y"], capsys)
    assert code == 1
    assert "task.train_data.input_path=" in out.err


def test_binary_eval_without_checkpoint(digits_dir, tmp_path, capsys):
    code, out = _run_binary([
        "--experiment=resnet_digits", "--mode=eval", f"--model_dir={tmp_path}/empty",
        f"--params_override=task.train_data.input_path={digits_dir}/train-*,"
        f"task.validation_data.input_path={digits_dir}/validation-*"], capsys)
    assert code == 1
    assert "contains no checkpoint" in out.err or "does not exist" in out.err
    assert not (tmp_path / "empty").exists()


def test_binary_lists_experiments(capsys):
    code, out = _run_binary(["--experiment=list"], capsys)
    assert code == 0
    assert "resnet_imagenet" in out.out and "resnet_digits" in out.out
