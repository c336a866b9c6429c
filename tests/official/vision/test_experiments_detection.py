"""RetinaNet recipes: durations, the published settings, and the parameter count."""

import math

import pytest

from official.core import exp_factory

RECIPES = ("retinanet_resnetfpn_coco", "retinanet_mobilenet_coco", "retinanet_shapes")


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates_and_states_epochs(name):
    cfg = exp_factory.get_exp_config(name)
    cfg.validate("")
    assert cfg.trainer.train_epochs > 0 and cfg.task.train_data.num_examples > 0
    assert cfg.trainer.optimizer_config.learning_rate.decay_epochs > 0
    assert len(cfg.task.class_names) == cfg.task.model.num_classes


def test_coco_recipe_is_the_published_one():
    cfg = exp_factory.get_exp_config("retinanet_resnetfpn_coco")
    task = cfg.task
    assert task.model.input_size == [640, 640, 3] and task.model.num_classes == 91
    assert (task.model.min_level, task.model.max_level) == (3, 7)
    assert task.model.anchor.num_scales == 3 and task.model.anchor.anchor_size == 4.0
    assert task.model.anchor.aspect_ratios == [0.5, 1.0, 2.0]
    assert (task.losses.focal_alpha, task.losses.focal_gamma) == (0.25, 1.5)
    assert (task.losses.huber_delta, task.losses.box_loss_weight) == (0.1, 50.0)
    assert (task.train_data.aug_scale_min, task.train_data.aug_scale_max) == (0.8, 1.2)
    assert cfg.trainer.init_checkpoint_modules == "backbone"
    assert task.class_names[1] == "person" and task.class_names[90] == "toothbrush"


def test_bad_levels_and_sizes_are_named():
    cfg = exp_factory.get_exp_config("retinanet_shapes")
    cfg.task.model.max_level = 7
    with pytest.raises(ValueError, match="divisible by 2\\*\\*max_level = 128"):
        cfg.validate("")
    cfg = exp_factory.get_exp_config("retinanet_shapes")
    cfg.task.model.detection_generator.nms_type = "soft"
    with pytest.raises(ValueError, match="nms_type must be one of per_class"):
        cfg.validate("")


@pytest.mark.slow
def test_coco_recipe_has_the_tf_model_garden_parameter_count():
    """34,091,159 trainable: ResNet-50 + FPN + head as in the TF Model Garden."""
    from official.core import task_factory

    cfg = exp_factory.get_exp_config("retinanet_resnetfpn_coco")
    model = task_factory.get_task(cfg.task).build_model()
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert trainable == 34_091_159
    assert abs(trainable - 34.0e6) / 34.0e6 < 0.005
