"""Registered image classification experiments.

Each factory returns a complete `ExperimentConfig`; its docstring names the
command that runs it and the result to expect. Durations are stated in
epochs of `task.train_data.num_examples` and turned into steps at the
global batch size when the config is loaded (`official/core/durations.py`),
so another batch size trains the same epochs.
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
    ClassificationDataConfig,
    ClassificationLossConfig,
    ImageClassificationModelConfig,
    ImageClassificationTaskConfig,
)

IMAGENET_TRAIN_EXAMPLES = 1_281_167
IMAGENET_NUM_CLASSES = 1000
DIGITS_TRAIN_EXAMPLES = 1437  # official.datasets.digits' fixed 80 % split


def image_classification_base(
    num_classes: int,
    image_size: int,
    global_batch_size: int,
    eval_batch_size: int,
    num_train_examples: int,
) -> ExperimentConfig:
    """An image classification experiment with input and model left default.

    `num_train_examples` is the training split's size (one epoch).
    """
    return ExperimentConfig(
        task=ImageClassificationTaskConfig(
            model=ImageClassificationModelConfig(
                num_classes=num_classes, input_size=[image_size, image_size, 3]
            ),
            train_data=ClassificationDataConfig(
                global_batch_size=global_batch_size,
                num_examples=num_train_examples,
                is_training=True,
            ),
            validation_data=ClassificationDataConfig(
                global_batch_size=eval_batch_size,
                is_training=False,
                drop_remainder=False,
            ),
        )
    )


def sgd_cosine(
    base_learning_rate: float,
    global_batch_size: int,
    decay_epochs: float,
    warmup_epochs: float,
    weight_decay: float,
) -> OptimizationConfig:
    """SGD with Nesterov momentum and a cosine decay after linear warmup.

    `base_learning_rate` is the peak rate at `global_batch_size`, which is
    also the reference batch size: another batch size scales the rate
    linearly (see `OptimizationConfig.reference_batch_size`). The cosine
    reaches 0 after `decay_epochs`.
    """
    return OptimizationConfig(
        optimizer=OptimizerConfig("sgd", {"momentum": 0.9, "nesterov": True}),
        learning_rate=LearningRateConfig(
            "cosine",
            {"initial_learning_rate": base_learning_rate},
            decay_epochs=decay_epochs,
        ),
        warmup=WarmupConfig(warmup_epochs=warmup_epochs, warmup_learning_rate=0.0),
        weight_decay=weight_decay,
        reference_batch_size=global_batch_size,
    )


def imagenet_trainer(
    batch: int,
    train_epochs: float,
    validation_interval_epochs: float,
    optimizer_config: OptimizationConfig,
) -> TrainerConfig:
    """An ImageNet training loop: a checkpoint every epoch, loops of one epoch
    at `batch` (the recipe's batch size)."""
    return TrainerConfig(
        train_epochs=train_epochs,
        steps_per_loop=durations.steps_per_epoch(IMAGENET_TRAIN_EXAMPLES, batch),
        checkpoint_interval_epochs=1,
        validation_interval_epochs=validation_interval_epochs,
        optimizer_config=optimizer_config,
    )


@register_experiment("resnet_imagenet")
def resnet_imagenet() -> ExperimentConfig:
    """ResNet-50 v1.5 on ImageNet, 90 epochs of SGD + cosine (published ~76-77 % top-1).

    Run with:
        python -m official.train --experiment=resnet_imagenet \\
          --mode=train_and_eval --model_dir=/tmp/resnet50 \\
          --params_override=task.train_data.input_path=/data/imagenet/train-*,task.validation_data.input_path=/data/imagenet/validation-*

    Batch 4096 at a peak learning rate of 1.6 (0.1 per 256 examples; another
    batch size scales it linearly), 5 warmup epochs, label smoothing 0.1,
    decoupled weight decay 1e-4 on kernels only. The accuracy is the
    published figure for this recipe, not reproduced here. At another
    `task.train_data.global_batch_size` the run keeps its 90 epochs (28,151
    steps at 4096, 450,411 at 256), evaluating every 5 epochs.
    """
    batch = 4096
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 224, batch, 1024, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig("resnet", {"model_id": 50})
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    exp.trainer = imagenet_trainer(
        batch,
        train_epochs=90,
        validation_interval_epochs=5,
        optimizer_config=sgd_cosine(
            1.6, batch, decay_epochs=90, warmup_epochs=5, weight_decay=1e-4
        ),
    )
    durations.resolve(exp)
    return exp


@register_experiment("resnet_digits")
def resnet_digits() -> ExperimentConfig:
    """A small ResNet on the embedded handwritten digits (>= 97 % accuracy).

    The data ships with scikit-learn; write it as TFRecords, then train:
        python -m official.datasets.digits --output_dir=data/digits
        python -m official.train --experiment=resnet_digits \\
          --mode=train_and_eval --model_dir=runs/digits \\
          --params_override=task.train_data.input_path=data/digits/train-*,task.validation_data.input_path=data/digits/validation-*

    ResNet-10 at a quarter of the width on 32 px images, 30 epochs of Adam
    and cosine decay (674 steps at batch 64); about a minute on two CPU
    cores. Digits are not mirror-symmetric and fill their frame, so
    there is no flip and no crop.
    """
    batch = 64
    exp = image_classification_base(10, 32, batch, 360, DIGITS_TRAIN_EXAMPLES)
    exp.task.model.backbone = BackboneConfig(
        "resnet", {"model_id": 10, "width_multiplier": 0.25}
    )
    for data in (exp.task.train_data, exp.task.validation_data):
        data.aug_random_crop = False
        data.aug_rand_hflip = False
        data.center_crop_fraction = 1.0
    exp.task.top_k = 2
    exp.trainer = TrainerConfig(
        train_epochs=30,
        steps_per_loop=durations.steps_per_epoch(DIGITS_TRAIN_EXAMPLES, batch),
        checkpoint_interval_epochs=10,
        validation_interval_epochs=10,
        optimizer_config=OptimizationConfig(
            optimizer=OptimizerConfig("adam", {}),
            learning_rate=LearningRateConfig(
                "cosine", {"initial_learning_rate": 3e-3}, decay_epochs=30
            ),
            warmup=WarmupConfig(warmup_epochs=1),
            reference_batch_size=batch,
        ),
    )
    exp.runtime.seed = 0
    durations.resolve(exp)
    return exp


@register_experiment("resnet_rs_imagenet")
def resnet_rs_imagenet() -> ExperimentConfig:
    """ResNet-RS-50 on ImageNet at 160 px, 350 epochs (published ~78-79 % top-1).

    Run with:
        python -m official.train --experiment=resnet_rs_imagenet \\
          --mode=train_and_eval --model_dir=/tmp/resnet_rs50 \\
          --params_override=task.train_data.input_path=/data/imagenet/train-*,task.validation_data.input_path=/data/imagenet/validation-*

    The ResNet-RS recipe (Bello et al. 2021): ResNet-D deep stem and
    average-pool shortcuts, squeeze-excitation 0.25, batch 4096 at a peak
    learning rate of 1.6 (linear in the batch size), 5 warmup epochs, cosine
    decay, decoupled weight decay 4e-5, label smoothing 0.1, dropout 0.25,
    EMA 0.9999, RandAugment (2 ops at magnitude 10). Deeper variants: set
    `task.model.backbone.params.model_id` (101, 152, 200) with the paper's
    image size and `stochastic_depth_rate`. The accuracy is the paper's
    published figure, not reproduced here.
    """
    batch = 4096
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 160, batch, 1024, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig(
        "resnet",
        {
            "model_id": 50,
            "stem_type": "deep",
            "resnetd_shortcut": True,
            "se_ratio": 0.25,
        },
    )
    exp.task.model.dropout_rate = 0.25
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    exp.task.train_data.aug_policy = "randaugment"
    exp.task.train_data.randaug_num_layers = 2
    exp.task.train_data.randaug_magnitude = 10.0
    exp.trainer = imagenet_trainer(
        batch,
        train_epochs=350,
        validation_interval_epochs=10,
        optimizer_config=sgd_cosine(
            1.6, batch, decay_epochs=350, warmup_epochs=5, weight_decay=4e-5
        ),
    )
    exp.trainer.ema_decay = 0.9999
    durations.resolve(exp)
    return exp
