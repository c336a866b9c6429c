"""Durations in epochs: conversion, resolution when a config loads, params.yaml."""

import pytest

from official.base.config import ConfigError
from official.core import durations
from official.core.config_loader import load_experiment_config
from official.core.experiment_config import ExperimentConfig

INPUTS = "task.train_data.input_path=a,task.validation_data.input_path=b"
IMAGENET = 1_281_167


def _load(name="resnet_imagenet", override="", files=()):
    return load_experiment_config(
        name, list(files), f"{INPUTS},{override}" if override else INPUTS
    )


def _steps(cfg):
    trainer = cfg.trainer
    opt = trainer.optimizer_config
    return {
        "train": trainer.train_steps,
        "checkpoint": trainer.checkpoint_interval,
        "validation": trainer.validation_interval,
        "warmup": opt.warmup.warmup_steps,
        "decay": opt.learning_rate.params["decay_steps"],
    }


def test_epochs_to_steps_and_back():
    assert durations.epochs_to_steps(2, 1000, 100) == 20
    assert durations.epochs_to_steps(0.5, 1000, 300) == 2  # 1.67, rounded up
    assert durations.epochs_to_steps(90, IMAGENET, 4096) == 28151
    for steps, n, batch in [
        (30_000, 10_582, 16),
        (90_000, 2_975, 8),
        (10_000, IMAGENET, 4096),
    ]:
        epochs = durations.steps_to_epochs(steps, n, batch)
        assert durations.epochs_to_steps(epochs, n, batch) == steps
    with pytest.raises(ValueError, match="num_examples=0"):
        durations.epochs_to_steps(1, 0, 8)


def test_resnet_imagenet_batch_256_trains_the_same_epochs():
    big = _load()
    small = _load(override="task.train_data.global_batch_size=256")
    assert (
        big.task.train_data.num_examples
        == small.task.train_data.num_examples
        == IMAGENET
    )
    for cfg in (big, small):
        assert cfg.trainer.train_epochs == 90
        assert cfg.trainer.optimizer_config.warmup.warmup_epochs == 5
        assert cfg.trainer.optimizer_config.learning_rate.decay_epochs == 90
    assert _steps(big) == {
        "train": 28151, "checkpoint": 312, "validation": 1560, "warmup": 1564, "decay": 28151,
    }  # fmt: skip
    assert _steps(small) == {
        "train": 450411, "checkpoint": 4992, "validation": 24960, "warmup": 25023,
        "decay": 450411,
    }  # fmt: skip
    for key in ("train", "warmup", "decay"):
        # 16x the steps, up to rounding each up to a whole step.
        assert abs(_steps(small)[key] - 16 * _steps(big)[key]) < 16
    epochs = small.trainer.train_steps * 256 / IMAGENET
    assert epochs == pytest.approx(90, abs=256 / IMAGENET)


def test_gradient_accumulation_counts_examples_per_update():
    cfg = _load(
        override="task.train_data.global_batch_size=1024,"
        "trainer.optimizer_config.gradient_accumulation_steps=4"
    )
    assert _steps(cfg) == _steps(_load())


def test_steps_and_epochs_in_one_layer_is_an_error_naming_both(tmp_path):
    with pytest.raises(ConfigError) as e:
        _load(override="trainer.train_steps=100,trainer.train_epochs=3")
    assert "trainer.train_steps=100" in str(e.value)
    assert "trainer.train_epochs=3" in str(e.value)
    assert "--params_override" in str(e.value)
    path = tmp_path / "both.yaml"
    path.write_text(
        "trainer:\n  optimizer_config:\n    warmup: {warmup_steps: 10, warmup_epochs: 2}\n"
    )
    with pytest.raises(ConfigError) as e:
        _load(files=[path])
    message = str(e.value)
    assert "trainer.optimizer_config.warmup.warmup_steps=10" in message
    assert "trainer.optimizer_config.warmup.warmup_epochs=2" in message
    assert "both.yaml" in message


def test_a_later_layer_in_steps_replaces_the_recipes_epochs(tmp_path):
    cfg = _load(override="trainer.train_steps=100")
    assert cfg.trainer.train_steps == 100
    assert cfg.trainer.train_epochs == 0
    assert cfg.trainer.optimizer_config.warmup.warmup_steps == 1564  # still in epochs
    path = tmp_path / "steps.yaml"
    path.write_text("trainer:\n  train_steps: 100\n")
    # A YAML file in steps, then overrides in epochs: the later layer wins.
    cfg = _load(override="trainer.train_epochs=2", files=[path])
    assert (cfg.trainer.train_epochs, cfg.trainer.train_steps) == (2, 626)
    decay = "trainer.optimizer_config.learning_rate.params.decay_steps=5000"
    cfg = _load(override=decay)
    assert cfg.trainer.optimizer_config.learning_rate.params["decay_steps"] == 5000
    assert cfg.trainer.optimizer_config.learning_rate.decay_epochs == 0


def test_a_new_schedule_starts_without_decay_epochs():
    cfg = _load(
        override="trainer.optimizer_config.learning_rate.type=constant,"
        "trainer.optimizer_config.learning_rate.params.learning_rate=0.1"
    )
    assert cfg.trainer.optimizer_config.learning_rate.decay_epochs == 0
    assert cfg.trainer.optimizer_config.learning_rate.params == {"learning_rate": 0.1}
    with pytest.raises(ConfigError, match="'constant' has no.*decay_epochs=0"):
        _load(
            override="trainer.optimizer_config.learning_rate.type=constant,"
            "trainer.optimizer_config.learning_rate.params.learning_rate=0.1,"
            "trainer.optimizer_config.learning_rate.decay_epochs=3"
        )


def test_epochs_need_num_examples():
    with pytest.raises(ConfigError) as e:
        _load(override="task.train_data.num_examples=0")
    assert "trainer.train_epochs=90 needs task.train_data.num_examples" in str(e.value)
    cfg = ExperimentConfig()
    cfg.trainer.train_epochs = 1
    with pytest.raises(ConfigError, match="trainer.train_steps instead"):
        durations.resolve(cfg)


def test_intervals_are_whole_loops():
    cfg = _load(
        override="task.train_data.global_batch_size=256,trainer.steps_per_loop=1000"
    )
    assert cfg.trainer.checkpoint_interval == 5000  # 5004.6 steps, rounded to loops
    assert cfg.trainer.validation_interval == 25000
    cfg.validate()


@pytest.mark.parametrize(
    "name", ["resnet_imagenet", "resnet_digits", "deeplabv3_pascal"]
)
def test_params_yaml_round_trip(name, tmp_path):
    cfg = _load(name, "task.train_data.global_batch_size=32")
    path = tmp_path / "params.yaml"
    path.write_text(cfg.to_yaml())
    again = load_experiment_config(name, [str(path)])
    assert again.as_dict() == cfg.as_dict()
    # A later override of the batch size derives the steps again from epochs.
    bigger = load_experiment_config(
        name, [str(path)], "task.train_data.global_batch_size=64"
    )
    assert bigger.trainer.train_epochs == cfg.trainer.train_epochs
    assert bigger.trainer.train_steps == durations.epochs_to_steps(
        cfg.trainer.train_epochs, cfg.task.train_data.num_examples, 64
    )


def test_params_yaml_of_a_run_in_steps_stays_in_steps(tmp_path):
    cfg = _load(override="trainer.train_steps=7")
    path = tmp_path / "params.yaml"
    path.write_text(cfg.to_yaml())
    again = load_experiment_config("resnet_imagenet", [str(path)])
    assert again.as_dict() == cfg.as_dict()
    assert again.trainer.train_steps == 7


def test_resolution_is_logged(caplog):
    with caplog.at_level("INFO", logger="absl"):
        _load(override="task.train_data.global_batch_size=256")
    lines = [
        r.getMessage() for r in caplog.records if "from train_epochs" in r.getMessage()
    ]
    assert len(lines) == 1
    assert (
        "trainer.train_steps=450411 from train_epochs=90 x num_examples=1281167 "
        "/ global_batch_size=256"
    ) in lines[0]
    assert "warmup_steps=25023 from warmup_epochs=5" in lines[0]


def test_resolve_is_idempotent_and_describes_the_run():
    cfg = _load(override="task.train_data.global_batch_size=512")
    before = cfg.as_dict()
    durations.resolve(cfg)
    assert cfg.as_dict() == before
    line = durations.describe_training(cfg)
    assert "Training 225206 steps of 512 examples: 90 epochs" in line
