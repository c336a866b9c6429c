"""Segmentation config validation: bad combinations name the valid choices."""

import pytest

from official.core import exp_factory
from official.core.config_loader import load_experiment_config

SOURCES = "task.train_data.input_path=a,task.validation_data.input_path=b"


def load(overrides="", name="deeplabv3_shapes"):
    return load_experiment_config(
        name, [], ",".join(filter(None, [SOURCES, overrides]))
    )


@pytest.mark.parametrize(
    "name",
    ["deeplabv3_pascal", "deeplabv3plus_cityscapes", "fcn_pascal", "deeplabv3_shapes"],
)
def test_experiments_validate(name):
    cfg = load(name=name)
    assert cfg.task.model.num_classes == len(cfg.task.class_names)
    assert cfg.trainer.optimizer_config.learning_rate.type == "poly"


def test_published_recipes():
    pascal = exp_factory.get_exp_config("deeplabv3_pascal")
    assert pascal.task.model.output_stride == 16
    assert pascal.task.model.head.aspp_dilation_rates == [6, 12, 18]
    assert pascal.task.train_data.global_batch_size == 16
    assert pascal.task.model.input_size == [512, 512, 3]
    assert (
        pascal.trainer.optimizer_config.learning_rate.params["initial_learning_rate"]
        == 0.007
    )
    city = exp_factory.get_exp_config("deeplabv3plus_cityscapes")
    assert (
        city.task.model.head.type == "deeplabv3plus"
        and city.task.model.num_classes == 19
    )
    assert city.task.validation_data.groundtruth_padded_size == [1024, 2048]
    fcn = exp_factory.get_exp_config("fcn_pascal")
    assert fcn.task.model.output_stride == 8 and fcn.task.model.aux_head


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "task.model.head.type=pspnet",
            "must be one of fcn, deeplabv3, deeplabv3plus, encnet",
        ),
        (
            "task.model.backbone.type=mobilenet,task.model.backbone.params={}",
            "needs a backbone that dilates its last stages \\(resnet\\)",
        ),
        (
            "task.model.backbone.params.output_stride=16",
            "set task.model.output_stride instead",
        ),
        ("task.model.output_stride=12", "must be one of 8, 16, 32"),
        (
            "task.model.head.type=deeplabv3plus,task.model.head.low_level=3",
            "use low_level=2",
        ),
        ("task.model.head.aspp_dilation_rates=[]", "non-empty list"),
        (
            "task.losses.class_weights=[1.0, 2.0]",
            "one weight per class \\(model.num_classes=4\\)",
        ),
        ("task.losses.ignore_label=3", "is a class index"),
        ("task.losses.top_k_percent_pixels=0.0", "must be in \\(0, 1\\]"),
        (
            "task.model.aux_head=true,task.losses.aux_loss_weight=0.0",
            "aux_loss_weight must be > 0",
        ),
        (
            "task.validation_data.resize_eval_groundtruth=false",
            "groundtruth_padded_size must be",
        ),
        ("task.train_data.groundtruth_padded_size=[64, 64]", "only used by evaluation"),
        ("task.model.input_size=[60, 60, 3]", "divisible by output_stride=8"),
        ("task.train_data.aug_scale_min=2.5", "aug_scale_min <= aug_scale_max"),
        ("task.class_names=[a, b]", "one name per class"),
    ],
)
def test_bad_combinations_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        load(override)
