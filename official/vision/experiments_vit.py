"""Registered Vision Transformer experiments.

Each factory returns a complete `ExperimentConfig`; its docstring names the
command that runs it and the result to expect.
"""

from __future__ import annotations

from official.core import durations
from official.core.exp_factory import register_experiment
from official.core.experiment_config import ExperimentConfig
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


def adamw_cosine(
    learning_rate: float,
    global_batch_size: int,
    decay_epochs: float,
    warmup_epochs: float,
    weight_decay: float,
    global_clipnorm: float = 1.0,
) -> OptimizationConfig:
    """AdamW with linear warmup from 0 then cosine decay to 0 at `decay_epochs`.

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
            {"initial_learning_rate": learning_rate},
            decay_epochs=decay_epochs,
        ),
        warmup=WarmupConfig(warmup_epochs=warmup_epochs, warmup_learning_rate=0.0),
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
    linear warmup steps (about 32 epochs) then cosine decay, gradients
    clipped at global norm 1, dropout 0.1, 224 px, class-token pooling.
    Another batch size scales the learning rate linearly and keeps the
    epochs. Label smoothing 0.1 is added, as in DeiT (Touvron et al. 2021);
    DeiT's RandAugment, Mixup, CutMix, random erasing and stochastic depth
    are not used. Published figures, not reproduced here: the ViT paper
    reports 77.9 % top-1 for ImageNet-only ViT-B/16 (fine-tuned at 384 px),
    and DeiT's recipe, whose strong augmentation keeps ViT-B from
    overfitting ImageNet-1k, reaches 81.8 %.
    """
    batch = 4096
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 224, batch, 1024, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig(
        "vit", {"model_id": "b16", "pooling": "token", "dropout_rate": 0.1}
    )
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    # The paper's 10k warmup steps of 4096 images, in epochs.
    warmup_epochs = durations.steps_to_epochs(10_000, IMAGENET_TRAIN_EXAMPLES, batch)
    exp.trainer = imagenet_trainer(
        batch,
        train_epochs=300,
        validation_interval_epochs=10,
        optimizer_config=adamw_cosine(
            3e-3, batch, decay_epochs=300, warmup_epochs=warmup_epochs, weight_decay=0.3
        ),
    )
    durations.resolve(exp)
    return exp
