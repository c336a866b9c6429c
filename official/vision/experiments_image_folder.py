"""`image_folder`: train a classifier on your own folder of class sub-folders.

The recipe takes its classes and its epoch size from the folders when the
config is loaded (`ImageClassificationTaskConfig.resolve_from_data`), so the
one command below is all a folder needs.
"""

from __future__ import annotations

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
from official.vision.experiments import image_classification_base

BATCH_SIZE = 32
IMAGE_SIZE = 96
EPOCHS = 30
# Batch-norm moving statistics, which evaluation uses, follow the weights
# within ~10 steps at momentum 0.9 (0.9**50 < 1 %), against ~500 at Keras'
# 0.99. Measured on the generated folder (169 steps): a run at 0.99
# evaluated at step 60 gave validation loss 10.7 and accuracy 0.40 (120.4
# and 0.33 at step 30), and the same weights 0.38 and 0.98 once the
# statistics were re-estimated from the training images; at 0.9 the step-60
# evaluation gave 0.35 and 0.98 directly.
NORM_MOMENTUM = 0.9


@register_experiment("image_folder")
def image_folder() -> ExperimentConfig:
    """A small ResNet for your own images, from scratch on a CPU.

    Lay the images out as DIR/train/<class>/*.jpg|png and
    DIR/validation/<class>/*.jpg|png (the same class names), then:
        python -m official.datasets.shape_folder --output_dir=data/shapes_folder
        python -m official.train --experiment=image_folder --mode=train_and_eval \\
          --model_dir=runs/shapes_folder \\
          --params_override=task.train_data.input_path=data/shapes_folder/train,task.validation_data.input_path=data/shapes_folder/validation

    The classes (`task.model.num_classes`, `labels.txt` of the export) and
    the epoch size (`task.train_data.num_examples`) come from the folders
    when the config is loaded; `task.top_k` is clamped to the classes.
    ResNet-18 at half width (2.8 M parameters) on 96 px images, batch 32,
    30 epochs of Adam at 2e-3 (linear in the batch size) with 2 warmup epochs
    and cosine decay, label smoothing 0.1, batch-norm momentum 0.9,
    evaluation and a checkpoint every 5 epochs; random crops of 35-100 % of
    the image and flips for training, the whole image for evaluation.
    Measured on the generated 3-class folder above (180 training images,
    169 steps): 1.00 validation accuracy (0.98 from step 60) in 53-159 s
    for both commands on two shared CPU cores (Intel Xeon, AVX-512). Sized
    for a few hundred to a few hundred thousand images on a CPU machine:
    it trains 120-180 images/s on two cores, so 30 epochs of 100,000 images
    take 5-7 hours; lower `trainer.train_epochs` (10-15) for large
    folders. From scratch, a few dozen images per class are enough only for
    easy classes: with shapes of random colors of either polarity (light on
    dark or dark on light) the same 180 images gave 0.70-0.78 (so did a
    plain 8-layer CNN).
    """
    exp = image_classification_base(
        num_classes=0,  # From the class folders.
        image_size=IMAGE_SIZE,
        global_batch_size=BATCH_SIZE,
        eval_batch_size=64,
        num_train_examples=0,  # From the training folder.
    )
    exp.task.model.backbone = BackboneConfig(
        "resnet",
        {"model_id": 18, "width_multiplier": 0.5, "norm_momentum": NORM_MOMENTUM},
    )
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    for data in (exp.task.train_data, exp.task.validation_data):
        data.input_format = "image_folder"
        data.center_crop_fraction = 1.0
    exp.task.train_data.crop_area_range = [0.35, 1.0]
    exp.task.top_k = 5
    exp.trainer = TrainerConfig(
        train_epochs=EPOCHS,
        steps_per_loop=10,
        checkpoint_interval_epochs=5,
        validation_interval_epochs=5,
        max_to_keep=3,
        optimizer_config=OptimizationConfig(
            optimizer=OptimizerConfig("adam", {}),
            learning_rate=LearningRateConfig(
                "cosine",
                # decay_steps: a stand-in until the folder's size turns
                # decay_epochs into steps (official/core/durations.py).
                {"initial_learning_rate": 2e-3, "decay_steps": 1000},
                decay_epochs=EPOCHS,
            ),
            warmup=WarmupConfig(warmup_epochs=2),
            reference_batch_size=BATCH_SIZE,
        ),
    )
    exp.runtime.seed = 0
    return exp
