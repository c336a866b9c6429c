"""The `image_folder` recipe: classes and epoch size come from the folders.

Why the recipe's batch norm uses momentum 0.9 (measured on the generated
3-class folder, 180 training images, 169 steps): see the README section
"Train on your own images" and `official/vision/experiments_image_folder.py`.
"""

import os

import numpy as np
import pytest

from official.base.config import ConfigError
from official.core import config_loader, exp_factory
from official.datasets import shape_folder

OVERRIDE = "task.train_data.input_path={0}/train,task.validation_data.input_path={0}/validation"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes_folder"))
    shape_folder.write_shape_folder(root, num_train=4, num_validation=2, image_size=16)
    return root


def test_classes_size_and_steps_come_from_the_folder(folder):
    cfg = config_loader.load_experiment_config(
        "image_folder", params_override=OVERRIDE.format(folder)
    )
    assert cfg.task.model.num_classes == 3
    assert cfg.task.top_k == 3  # Clamped from the recipe's 5.
    assert cfg.task.train_data.num_examples == 12
    # 30 epochs of 12 images at batch 32.
    assert cfg.trainer.train_steps == 12
    assert cfg.trainer.optimizer_config.learning_rate.params["decay_steps"] == 12
    assert cfg.trainer.train_epochs == 30


def test_values_set_by_the_user_are_kept(folder):
    cfg = config_loader.load_experiment_config(
        "image_folder",
        params_override=OVERRIDE.format(folder)
        + ",task.model.num_classes=4,task.train_data.num_examples=64,task.top_k=2",
    )
    assert cfg.task.model.num_classes == 4
    assert cfg.task.top_k == 2
    assert cfg.task.train_data.num_examples == 64
    assert cfg.trainer.train_steps == 60  # 30 epochs of 64 at batch 32


def test_params_yaml_reloads_without_the_folder(folder, tmp_path):
    cfg = config_loader.load_experiment_config(
        "image_folder", params_override=OVERRIDE.format(folder)
    )
    path = tmp_path / "params.yaml"
    path.write_text(cfg.to_yaml())
    moved = cfg.copy()
    moved.task.train_data.input_path = str(tmp_path / "gone")
    path.write_text(moved.to_yaml())
    again = config_loader.load_experiment_config("image_folder", [str(path)])
    assert again.task.model.num_classes == 3
    assert again.trainer.train_steps == cfg.trainer.train_steps


def test_validation_classes_must_match(folder, tmp_path):
    os.makedirs(tmp_path / "validation" / "circles")
    src = os.path.join(folder, "validation", "circles", "0000.png")
    (tmp_path / "validation" / "circles" / "0000.png").write_bytes(
        open(src, "rb").read()
    )
    override = (
        f"task.train_data.input_path={folder}/train,"
        f"task.validation_data.input_path={tmp_path}/validation"
    )
    with pytest.raises(ConfigError, match="class folders.*validation: \\['circles'\\]"):
        config_loader.load_experiment_config("image_folder", params_override=override)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        config_loader.load_experiment_config(
            "image_folder", params_override=OVERRIDE.format(tmp_path / "nowhere")
        )


def test_zero_classes_needs_an_image_folder():
    cfg = exp_factory.get_exp_config("resnet_digits")
    cfg.task.model.num_classes = 0
    cfg.override_dotted(
        {"task.train_data.input_path": "x", "task.validation_data.input_path": "y"}
    )
    with pytest.raises(ValueError, match="num_classes=0 takes the classes"):
        cfg.validate()


def test_top_k_error_names_a_value():
    cfg = exp_factory.get_exp_config("resnet_digits")
    cfg.task.model.num_classes = 3
    cfg.task.top_k = 5
    with pytest.raises(ValueError, match="task.top_k=3"):
        cfg.validate("")


def test_shape_folder_is_deterministic(tmp_path):
    a = shape_folder.draw(0, 32, seed=3)
    b = shape_folder.draw(0, 32, seed=3)
    np.testing.assert_array_equal(a, b)
    counts = shape_folder.write_shape_folder(
        str(tmp_path), num_train=1, num_validation=1, image_size=8
    )
    assert counts == {"train": 3, "validation": 3}
    with pytest.raises(ValueError, match="num_train"):
        shape_folder.write_shape_folder(str(tmp_path), num_train=0)


def test_class_names_follow_the_folder(folder):
    from official.core import task_factory

    cfg = config_loader.load_experiment_config(
        "image_folder", params_override=OVERRIDE.format(folder)
    )
    task = task_factory.get_task(cfg.task)
    assert task.class_names() == list(shape_folder.CLASS_NAMES)
