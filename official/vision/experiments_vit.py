"""Registered Vision Transformer experiments.

Each factory returns a complete `ExperimentConfig`; its docstring names the
command that runs it and the result to expect.
"""

from __future__ import annotations

import official.vision.backbones.vit  # noqa: F401  (registers the backbone used here)
from official.core.durations import epochs_to_steps
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
)


def adamw_cosine(
    learning_rate: float,
    global_batch_size: int,
    train_steps: int,
    warmup_steps: int,
    weight_decay: float,
    global_clipnorm: float = 1.0,
) -> OptimizationConfig:
    """AdamW with linear warmup from 0 then cosine decay to 0.

    `learning_rate` is the peak rate at `global_batch_size`, which is also
    the reference batch size: another batch size scales the rate linearly
    (see `OptimizationConfig.reference_batch_size`).

    `weight_decay` is Keras AdamW's decoupled decay, which is multiplied by
    the learning rate (`w -= lr * weight_decay * w`), as flax's
    `Adam(weight_decay=...)` used by the ViT paper. Biases and layer-norm
    parameters are not decayed.
    """
    return OptimizationConfig(
        optimizer=OptimizerConfig("adamw", {"beta_1": 0.9, "beta_2": 0.999}),
        learning_rate=LearningRateConfig(
            "cosine",
            {"initial_learning_rate": learning_rate, "decay_steps": train_steps},
        ),
        warmup=WarmupConfig(warmup_steps=warmup_steps, warmup_learning_rate=0.0),
        weight_decay=weight_decay,
        global_clipnorm=global_clipnorm,
        reference_batch_size=global_batch_size,
    )


@register_experiment("vit_imagenet")
def vit_imagenet() -> ExperimentConfig:
    """ViT-B/16 on ImageNet-1k from scratch, 300 epochs of AdamW + cosine.

    Run with:
        python -m official.train --experiment=vit_imagenet \\
          --mode=train_and_eval --model_dir=/tmp/vit_b16 \\
          --params_override=task.train_data.input_path=/data/imagenet/train-*,task.validation_data.input_path=/data/imagenet/validation-*

    The recipe of Dosovitskiy et al. 2021 ("An Image is Worth 16x16 Words",
    Table 3 and Appendix B.1, ImageNet row for ViT-B/16): batch 4096, Adam
    (beta 0.9, 0.999) with weight decay 0.3, learning rate 3e-3 with 10k
    linear warmup steps then cosine decay, gradients clipped at global norm
    1, dropout 0.1, 224 px, class-token pooling. Another batch size scales
    the learning rate linearly. Label smoothing 0.1 is
    added, as in DeiT (Touvron et al. 2021); DeiT's RandAugment, Mixup,
    CutMix, random erasing and stochastic depth are not used. Expect about
    74-78 % top-1: the ViT paper reports 77.9 % for ImageNet-only ViT-B/16
    (fine-tuned at 384 px); without strong augmentation ViT-B overfits
    ImageNet-1k, which is why DeiT's recipe reaches 81.8 %.
    """
    batch = 4096
    exp = image_classification_base(IMAGENET_NUM_CLASSES, 224, batch, 1024)
    exp.task.model.backbone = BackboneConfig(
        "vit", {"model_id": "b16", "pooling": "token", "dropout_rate": 0.1}
    )
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    per_epoch = epochs_to_steps(1, IMAGENET_TRAIN_EXAMPLES, batch)
    train_steps = epochs_to_steps(300, IMAGENET_TRAIN_EXAMPLES, batch)
    exp.trainer = TrainerConfig(
        train_steps=train_steps,
        steps_per_loop=per_epoch,
        checkpoint_interval=per_epoch,
        validation_interval=per_epoch * 10,
        optimizer_config=adamw_cosine(
            3e-3, batch, train_steps, warmup_steps=10_000, weight_decay=0.3
        ),
    )
    return exp
