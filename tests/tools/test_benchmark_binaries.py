"""tools/benchmark_binaries.py: the two binaries' commands, records and arithmetic."""

import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "benchmark_binaries_tool", ROOT / "tools" / "benchmark_binaries.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(tool, *args):
    tool.FLAGS.unparse_flags()
    tool.FLAGS(["benchmark_binaries", *args])


def test_records_are_read_by_gardens_classification_input(tool, tmp_path):
    import tensorflow as tf

    from official.core import config_loader

    pattern = tool.write_records(str(tmp_path), num_images=4, size=32)
    assert len(tf.io.gfile.glob(pattern)) == 2
    config = config_loader.load_experiment_config(
        "resnet_imagenet",
        [],
        {
            "task.train_data.input_path": pattern,
            "task.model.input_size": [32, 32, 3],
            "task.train_data.global_batch_size": 2,
        },
    )
    from official.core import task_factory

    task = task_factory.get_task(config.task)
    images, labels = next(iter(task.build_inputs(config.task.train_data)))
    assert images.shape == (2, 32, 32, 3)
    assert all(1 <= int(label) < 1001 for label in labels)


def test_both_commands_train_the_same_model(tool):
    _parse(tool, "--image_size=96", "--global_batch_size=4", "--model_id=18")
    garden = tool.garden_command("/r/train-*", "/m", 20)
    reference = tool.reference_command("/venv/bin/python", "/r/train-*", "/m2", 20)
    assert garden[:3] == [sys.executable, "-m", "official.train"]
    assert reference[:4] == ["/venv/bin/python", "-I", "-m", "official.vision.train"]
    for command, depth_key in (
        (garden, "task.model.backbone.params.model_id=18"),
        (reference, "task.model.backbone.resnet.model_id=18"),
    ):
        overrides = command[-1]
        assert "--experiment=resnet_imagenet" in command and "--mode=train" in command
        for item in (
            depth_key,
            "task.model.input_size=[96,96,3]",
            "task.train_data.global_batch_size=4",
            "trainer.train_steps=20",
            "trainer.steps_per_loop=10",
            "runtime.mixed_precision_dtype=float32",
        ):
            assert item in overrides


def test_loops_divide_both_runs_and_per_step_is_the_difference(tool):
    _parse(tool, "--short_steps=6", "--long_steps=15")
    assert tool.steps_per_loop() == 3
    short = {"seconds": 10.0, "user_seconds": 8.0, "system_seconds": 1.0}
    long = {"seconds": 19.0, "user_seconds": 26.0, "system_seconds": 1.9}
    assert tool.per_step(short, long, 9) == pytest.approx(
        {"seconds": 1.0, "user_seconds": 2.0, "system_seconds": 0.1}
    )


def test_step_counts_are_checked(tool, capsys):
    assert tool.main(["benchmark_binaries", "--short_steps=5", "--long_steps=5"]) == 2
    assert "0 < --short_steps < --long_steps" in capsys.readouterr().err


def test_the_fastest_positive_repeat_counts(tool):
    assert tool.best_step_seconds([{"seconds": 0.5}, {"seconds": 0.3}]) == 0.3
    assert tool.best_step_seconds([{"seconds": -0.1}, {"seconds": 0.4}]) == 0.4
    assert tool.best_step_seconds([{"seconds": -0.1}]) is None
