"""mobilenet_imagenet and efficientnet_imagenet: recipes and config validation."""

import pytest

# Until official/registry_imports.py lists them:
import official.vision.backbones.efficientnet  # noqa: F401
import official.vision.backbones.mobilenet  # noqa: F401
import official.vision.experiments_mobile  # noqa: F401
from official.core.config_loader import load_experiment_config
from official.core.durations import epochs_to_steps

INPUTS = "task.train_data.input_path=a,task.validation_data.input_path=b"


def _steps(epochs, batch=4096):
    return epochs_to_steps(epochs, 1_281_167, batch)


def _load(name, override=""):
    overrides = f"{override},{INPUTS}" if override else INPUTS
    return load_experiment_config(name, [], overrides)


def test_mobilenet_imagenet_recipe():
    cfg = _load("mobilenet_imagenet")
    assert cfg.task.model.backbone.type == "mobilenet"
    assert cfg.task.model.backbone.params["model_id"] == "MobileNetV2"
    assert cfg.task.model.dropout_rate == 0.2
    assert cfg.task.losses.label_smoothing == 0.1
    assert cfg.trainer.train_epochs == 500
    assert cfg.trainer.train_steps == _steps(500) == 156_393
    opt = cfg.trainer.optimizer_config
    assert (opt.optimizer.type, opt.optimizer.params["epsilon"]) == ("rmsprop", 0.002)
    assert opt.learning_rate.type == "exponential"
    assert opt.learning_rate.params == {
        "initial_learning_rate": 0.256,
        "decay_steps": 782,  # 2.5 epochs
        "decay_rate": 0.98,
        "staircase": True,
    }
    assert opt.learning_rate.decay_epochs == 2.5
    assert opt.warmup.warmup_steps == _steps(5) == 1564
    assert opt.reference_batch_size == cfg.task.train_data.global_batch_size == 4096


def test_efficientnet_imagenet_recipe():
    cfg = _load("efficientnet_imagenet")
    assert cfg.task.model.backbone.type == "efficientnet"
    assert cfg.task.model.backbone.params == {
        "model_id": "b0",
        "stochastic_depth_rate": 0.2,
    }
    assert cfg.task.model.input_size == [224, 224, 3]
    assert cfg.task.model.dropout_rate == 0.2
    assert cfg.task.losses.label_smoothing == 0.1
    assert cfg.trainer.train_steps == _steps(350)
    opt = cfg.trainer.optimizer_config
    assert (opt.optimizer.type, opt.optimizer.params["epsilon"]) == ("rmsprop", 1e-3)
    assert opt.learning_rate.params["decay_steps"] == 751  # 2.4 epochs
    assert opt.learning_rate.params["decay_rate"] == 0.97
    assert opt.weight_decay == 1e-5


@pytest.mark.parametrize("name", ["mobilenet_imagenet", "efficientnet_imagenet"])
def test_decay_and_warmup_follow_the_batch_size(name):
    cfg = _load(name, "task.train_data.global_batch_size=1024")
    opt = cfg.trainer.optimizer_config
    decay_epochs = opt.learning_rate.decay_epochs
    assert opt.learning_rate.params["decay_steps"] == _steps(decay_epochs, 1024)
    assert opt.warmup.warmup_steps == _steps(5, 1024) == 6256
    assert cfg.trainer.ema_decay == 0.9999


@pytest.mark.parametrize(
    "name, override, match",
    [
        (
            "efficientnet_imagenet",
            "task.model.backbone.params.model_id=b9",
            r"b0, b1, b2, b3, b4, b5, b6, b7\. Received: model_id='b9'",
        ),
        (
            "efficientnet_imagenet",
            "task.model.backbone.params.stochastic_depth_rate=1.5",
            "Received: stochastic_depth_rate=1.5",
        ),
        (
            "mobilenet_imagenet",
            "task.model.backbone.params.width_multiplier=0",
            "Received: width_multiplier=0",
        ),
        (
            "mobilenet_imagenet",
            "task.model.backbone.params.model_id=MobileNetV1",
            "MobileNetV2, MobileNetV3Small, MobileNetV3Large",
        ),
    ],
)
def test_invalid_backbone_values_fail_at_config_validation(name, override, match):
    with pytest.raises(ValueError, match=match) as e:
        _load(name, override)
    assert "task.model.backbone.params" in str(e.value)


def test_unknown_backbone_param_fails_at_config_validation():
    with pytest.raises(KeyError, match="Did you mean 'width_coefficient'"):
        _load("efficientnet_imagenet", "task.model.backbone.params.width_multiplier=2")
