"""Registered ImageNet experiments of the mobile backbones: MobileNet, EfficientNet.

Both follow their reference recipes: RMSprop with a staircase exponential
decay after a linear warmup, label smoothing 0.1, durations stated in epochs
(turned into steps at the global batch size when the config is loaded, see
`official/core/durations.py`), and an exponential moving average (0.9999) of
the weights for evaluation and export.
"""

from __future__ import annotations

from official.core import durations
from official.core.exp_factory import register_experiment
from official.core.experiment_config import ExperimentConfig, TrainerConfig
from official.modeling.optimization.optimization_config import (
    LearningRateConfig,
    OptimizationConfig,
    OptimizerConfig,
    WarmupConfig,
)
from official.vision.configs.image_classification import (
    BackboneConfig,
    ClassificationLossConfig,
)
from official.vision.experiments import (
    IMAGENET_NUM_CLASSES,
    IMAGENET_TRAIN_EXAMPLES,
    image_classification_base,
    imagenet_trainer,
)


def rmsprop_exponential(
    base_learning_rate: float,
    global_batch_size: int,
    decay_epochs: float,
    decay_rate: float,
    warmup_epochs: float,
    epsilon: float,
    weight_decay: float,
) -> OptimizationConfig:
    """RMSprop (rho 0.9, momentum 0.9) and a staircase exponential decay.

    The rate is multiplied by `decay_rate` every `decay_epochs` epochs, after
    a linear warmup from 0 over `warmup_epochs`. `base_learning_rate` is the
    peak rate at `global_batch_size`, the reference batch size: another batch
    size scales the rate linearly.

    Example:
    ```python
    from official.vision.experiments_mobile import rmsprop_exponential

    cfg = rmsprop_exponential(0.256, 4096, decay_epochs=2.5, decay_rate=0.98,
                              warmup_epochs=5, epsilon=0.002, weight_decay=1e-5)
    assert cfg.optimizer.type == "rmsprop"
    assert cfg.learning_rate.params["staircase"] is True
    ```
    """
    return OptimizationConfig(
        optimizer=OptimizerConfig(
            "rmsprop", {"rho": 0.9, "momentum": 0.9, "epsilon": epsilon}
        ),
        learning_rate=LearningRateConfig(
            "exponential",
            {
                "initial_learning_rate": base_learning_rate,
                "decay_rate": decay_rate,
                "staircase": True,
            },
            decay_epochs=decay_epochs,
        ),
        warmup=WarmupConfig(warmup_epochs=warmup_epochs, warmup_learning_rate=0.0),
        weight_decay=weight_decay,
        reference_batch_size=global_batch_size,
    )


def _imagenet_rmsprop_trainer(
    epochs: int,
    batch: int,
    base_learning_rate: float,
    decay_epochs: float,
    decay_rate: float,
    epsilon: float,
) -> TrainerConfig:
    trainer = imagenet_trainer(
        batch,
        train_epochs=epochs,
        validation_interval_epochs=5,
        optimizer_config=rmsprop_exponential(
            base_learning_rate,
            batch,
            decay_epochs=decay_epochs,
            decay_rate=decay_rate,
            warmup_epochs=5,
            epsilon=epsilon,
            weight_decay=1e-5,
        ),
    )
    trainer.ema_decay = 0.9999
    return trainer


@register_experiment("mobilenet_imagenet")
def mobilenet_imagenet() -> ExperimentConfig:
    """MobileNetV2 (width 1.0) on ImageNet, 500 epochs of RMSprop (published ~72 % top-1).

    Run with:
        python -m official.train --experiment=mobilenet_imagenet \\
          --mode=train_and_eval --model_dir=/tmp/mobilenet_v2 \\
          --params_override=task.train_data.input_path=/data/imagenet/train-*,task.validation_data.input_path=/data/imagenet/validation-*

    The TF Model Garden recipe: batch 4096 at a peak learning rate of 0.256
    (0.008 per 128 examples; another batch size scales it linearly), 5
    warmup epochs, then x0.98 every 2.5 epochs; RMSprop rho 0.9, momentum
    0.9, epsilon 0.002; label smoothing 0.1, dropout 0.2 before the
    classifier, batch normalization momentum 0.997, decoupled weight decay
    1e-5 on kernels (the reference adds it as an L2 loss), weights averaged
    with EMA 0.9999 (the published 72.0 % top-1, not reproduced here). Other
    MobileNets: `task.model.backbone.params.model_id=MobileNetV3Large` (or
    `MobileNetV3Small`), `width_multiplier=0.75`.
    """
    batch = 4096
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 224, batch, 1024, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig(
        "mobilenet",
        {"model_id": "MobileNetV2", "width_multiplier": 1.0, "norm_momentum": 0.997},
    )
    exp.task.model.dropout_rate = 0.2
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    exp.trainer = _imagenet_rmsprop_trainer(
        epochs=500,
        batch=batch,
        base_learning_rate=0.256,
        decay_epochs=2.5,
        decay_rate=0.98,
        epsilon=0.002,
    )
    durations.resolve(exp)
    return exp


@register_experiment("efficientnet_imagenet")
def efficientnet_imagenet() -> ExperimentConfig:
    """EfficientNet-B0 on ImageNet, 350 epochs of RMSprop (published ~77 % top-1).

    Run with:
        python -m official.train --experiment=efficientnet_imagenet \\
          --mode=train_and_eval --model_dir=/tmp/efficientnet_b0 \\
          --params_override=task.train_data.input_path=/data/imagenet/train-*,task.validation_data.input_path=/data/imagenet/validation-*

    The reference recipe (Tan & Le 2019): batch 4096 at a peak learning rate
    of 0.256 (0.016 per 256 examples; another batch size scales it
    linearly), 5 warmup epochs, then x0.97 every 2.4 epochs; RMSprop rho 0.9,
    momentum 0.9, epsilon 1e-3; label smoothing 0.1, dropout 0.2 before the
    classifier, stochastic depth 0.2, decoupled weight decay 1e-5 on
    kernels, weights averaged with EMA 0.9999, AutoAugment (policy v0) on
    the training images. Larger variants: set
    `task.model.backbone.params.model_id` (b1 ... b7) together with the
    variant's `task.model.input_size` and `task.model.dropout_rate` (listed
    in `official.vision.backbones.efficientnet.EFFICIENTNET_SPECS`). The
    accuracy is the published 77.1 % of Tan & Le, not reproduced here.
    """
    batch = 4096
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 224, batch, 1024, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig(
        "efficientnet", {"model_id": "b0", "stochastic_depth_rate": 0.2}
    )
    exp.task.model.dropout_rate = 0.2
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    exp.task.train_data.aug_policy = "autoaugment_v0"
    exp.trainer = _imagenet_rmsprop_trainer(
        epochs=350,
        batch=batch,
        base_learning_rate=0.256,
        decay_epochs=2.4,
        decay_rate=0.97,
        epsilon=1e-3,
    )
    durations.resolve(exp)
    return exp
