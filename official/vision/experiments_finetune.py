"""Registered fine-tuning experiments: start from published weights.

Each recipe starts from weights given by `trainer.init_checkpoint`, either
`store:NAME` (a manifest entry, official/core/model_store.py) or a
checkpoint directory or file (e.g. `tools/import_weights.py`'s output). The
recipes leave it empty and refuse to load without it: a fine-tuning recipe
that silently trained from scratch would give a wrong result without an
error. They load the backbone only (`trainer.init_checkpoint_modules=backbone`),
so the head is new and any number of classes works. Durations are in epochs
of `task.train_data.num_examples` (ImageNet's by default; another dataset
sets its own, or reads an image folder, see each docstring).
"""

from __future__ import annotations

import dataclasses

from official.base.config import ConfigError
from official.core import durations
from official.core.exp_factory import register_experiment
from official.core.experiment_config import ExperimentConfig
from official.core.finetune_config import FinetuneConfig, LoRAConfig
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

# Every batch norm of a Garden ResNet is the `norm` of a ConvNormAct
# (`backbone/stem_conv/norm/gamma`, `backbone/level2_block1/conv1/norm/beta`).
RESNET_BATCH_NORM_PATTERN = r"^backbone/.*/norm/"
# The attention projections (query, key, value, output) and both MLP Dense
# layers of each ViT encoder block (`backbone/block3/attention/query/kernel`,
# `backbone/block3/mlp_dense1/kernel`).
VIT_LORA_TARGET_PATTERNS = [
    r"^backbone/block\d+/attention/",
    r"^backbone/block\d+/mlp_dense[12]/",
]
HEAD_PATTERN = r"^head/"


@dataclasses.dataclass
class FinetuneExperimentConfig(ExperimentConfig):
    """An `ExperimentConfig` whose `validate()` requires `trainer.init_checkpoint`."""

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if not self.trainer.init_checkpoint:
            raise ConfigError(
                "This fine-tuning recipe needs the weights to start from: set "
                "trainer.init_checkpoint to store:NAME (a model-store entry) or a "
                "checkpoint path, e.g. --params_override="
                "trainer.init_checkpoint=store:NAME. To train from scratch, use "
                "the matching from-scratch recipe (resnet_imagenet, vit_imagenet)."
            )


def _finetune_experiment(exp: ExperimentConfig) -> FinetuneExperimentConfig:
    out = FinetuneExperimentConfig(
        task=exp.task, trainer=exp.trainer, runtime=exp.runtime
    )
    out.trainer.init_checkpoint_modules = "backbone"
    return out


def _sgd_cosine(
    learning_rate: float,
    batch: int,
    epochs: float,
    warmup_epochs: float,
    weight_decay: float = 0.0,
    global_clipnorm: float = 0.0,
) -> OptimizationConfig:
    """SGD with momentum 0.9, linear warmup from 0, cosine decay to 0."""
    return OptimizationConfig(
        optimizer=OptimizerConfig("sgd", {"momentum": 0.9}),
        learning_rate=LearningRateConfig(
            "cosine", {"initial_learning_rate": learning_rate}, decay_epochs=epochs
        ),
        warmup=WarmupConfig(warmup_epochs=warmup_epochs, warmup_learning_rate=0.0),
        weight_decay=weight_decay,
        global_clipnorm=global_clipnorm,
        reference_batch_size=batch,
    )


@register_experiment("resnet50_imagenet_finetune")
def resnet50_imagenet_finetune() -> ExperimentConfig:
    """ResNet-50 fine-tuned from store weights, 10 epochs, batch norms frozen.

    Run with (the weights are required; the run stops without them):
        python -m official.train --experiment=resnet50_imagenet_finetune \\
          --mode=train_and_eval --model_dir=/tmp/resnet50_finetune \\
          --params_override=trainer.init_checkpoint=store:NAME,task.train_data.input_path=/data/train-*,task.validation_data.input_path=/data/validation-*

    Loads the backbone of a ResNet-50 v1.5 checkpoint (`model_id` 50, as
    `resnet_imagenet` trains) and trains a new head with it: 224 px, batch
    256, SGD with momentum 0.9 at a peak learning rate of 0.01 (linear in the
    batch size), half an epoch of warmup, cosine decay over 10 epochs,
    decoupled weight decay 1e-5, label smoothing 0.1. Every batch norm is
    frozen (`trainer.finetune.freeze_patterns: ['^backbone/.*/norm/']`): its
    scale and offset do not train and it normalizes with the pretrained
    moving statistics, which small batches and a new dataset would otherwise
    disturb. For a folder of your own images add
    `task.train_data.input_format=image_folder,task.validation_data.input_format=image_folder,task.model.num_classes=0,task.train_data.num_examples=0`.
    A common fine-tuning recipe, not a published one: no published accuracy
    is quoted, and none is reproduced here (the result depends on the
    weights and the data).
    """
    batch = 256
    epochs = 10
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 224, batch, 256, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig("resnet", {"model_id": 50})
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    exp.trainer = imagenet_trainer(
        batch,
        train_epochs=epochs,
        validation_interval_epochs=1,
        optimizer_config=_sgd_cosine(
            0.01, batch, epochs, warmup_epochs=0.5, weight_decay=1e-5
        ),
    )
    exp.trainer.finetune = FinetuneConfig(freeze_patterns=[RESNET_BATCH_NORM_PATTERN])
    exp = _finetune_experiment(exp)
    durations.resolve(exp)
    return exp


def _vit_b16_finetune_base(batch: int) -> ExperimentConfig:
    exp = image_classification_base(
        IMAGENET_NUM_CLASSES, 224, batch, 512, IMAGENET_TRAIN_EXAMPLES
    )
    exp.task.model.backbone = BackboneConfig(
        "vit", {"model_id": "b16", "pooling": "token"}
    )
    exp.task.losses = ClassificationLossConfig(label_smoothing=0.1)
    return exp


# The ViT paper's fine-tuning length for ImageNet: 20k steps at batch 512.
_VIT_BATCH = 512
_VIT_EPOCHS = durations.steps_to_epochs(20_000, IMAGENET_TRAIN_EXAMPLES, _VIT_BATCH)
_VIT_WARMUP_EPOCHS = durations.steps_to_epochs(500, IMAGENET_TRAIN_EXAMPLES, _VIT_BATCH)


@register_experiment("vit_b16_imagenet_finetune")
def vit_b16_imagenet_finetune() -> ExperimentConfig:
    """ViT-B/16 fine-tuned from store weights, ~8 epochs of SGD (the ViT paper's recipe).

    Run with (the weights are required; the run stops without them):
        python -m official.train --experiment=vit_b16_imagenet_finetune \\
          --mode=train_and_eval --model_dir=/tmp/vit_b16_finetune \\
          --params_override=trainer.init_checkpoint=store:NAME,task.train_data.input_path=/data/train-*,task.validation_data.input_path=/data/validation-*

    Loads the backbone of a ViT-B/16 checkpoint (class-token pooling, as
    `vit_imagenet` trains) and trains all of it with a new head. The
    fine-tuning recipe of Dosovitskiy et al. 2021 (Appendix B.1.1): SGD with
    momentum 0.9, no weight decay, gradients clipped at global norm 1,
    batch 512, cosine decay, 20k steps (7.99 epochs of ImageNet; the epochs
    are kept at another batch size); here at a peak learning rate of 0.01
    (the paper picks one of 0.003-0.06 per dataset; linear in the batch
    size), with 500 warmup steps, label smoothing 0.1 and at 224 px (the
    paper fine-tunes at 384 px; the position embedding's length follows the
    image size, so the weights must have been trained at the same size).
    The paper's accuracies are published figures for its own pretrained
    weights, not reproduced here. For a folder of your own
    images add
    `task.train_data.input_format=image_folder,task.validation_data.input_format=image_folder,task.model.num_classes=0,task.train_data.num_examples=0`.
    """
    exp = _vit_b16_finetune_base(_VIT_BATCH)
    exp.trainer = imagenet_trainer(
        _VIT_BATCH,
        train_epochs=_VIT_EPOCHS,
        validation_interval_epochs=1,
        optimizer_config=_sgd_cosine(
            0.01,
            _VIT_BATCH,
            _VIT_EPOCHS,
            warmup_epochs=_VIT_WARMUP_EPOCHS,
            global_clipnorm=1.0,
        ),
    )
    exp = _finetune_experiment(exp)
    durations.resolve(exp)
    return exp


@register_experiment("vit_b16_imagenet_lora")
def vit_b16_imagenet_lora() -> ExperimentConfig:
    """ViT-B/16 from store weights with LoRA adapters (rank 8) and a new head.

    Run with (the weights are required; the run stops without them):
        python -m official.train --experiment=vit_b16_imagenet_lora \\
          --mode=train_and_eval --model_dir=/tmp/vit_b16_lora \\
          --params_override=trainer.init_checkpoint=store:NAME,task.train_data.input_path=/data/train-*,task.validation_data.input_path=/data/validation-*

    As `vit_b16_imagenet_finetune` (same model, data, length and schedule),
    but the pretrained weights stay fixed: `trainer.finetune.lora` adds
    rank-8 adapters (alpha 16, so scale 2) to the query, key, value and
    output projections of every attention layer and to both MLP Dense layers
    of every encoder block (`target_patterns`
    `['^backbone/block\\d+/attention/', '^backbone/block\\d+/mlp_dense[12]/']`),
    and the new head trains whole (`trainable_patterns: ['^head/']`); all
    else is frozen. The adapters are also written to
    `model_dir/lora_adapters.npz` and merged into the kernels by
    `serving.export`. Adapters need a larger step than full fine-tuning:
    Adam at a peak learning rate of 1e-3 (linear in the batch size), no
    weight decay, gradients clipped at global norm 1. A common LoRA
    configuration, not a published recipe: no published accuracy is quoted,
    and none is reproduced here.
    """
    exp = _vit_b16_finetune_base(_VIT_BATCH)
    exp.trainer = imagenet_trainer(
        _VIT_BATCH,
        train_epochs=_VIT_EPOCHS,
        validation_interval_epochs=1,
        optimizer_config=OptimizationConfig(
            optimizer=OptimizerConfig("adam", {}),
            learning_rate=LearningRateConfig(
                "cosine", {"initial_learning_rate": 1e-3}, decay_epochs=_VIT_EPOCHS
            ),
            warmup=WarmupConfig(
                warmup_epochs=_VIT_WARMUP_EPOCHS, warmup_learning_rate=0.0
            ),
            global_clipnorm=1.0,
            reference_batch_size=_VIT_BATCH,
        ),
    )
    exp.trainer.finetune = FinetuneConfig(
        lora=LoRAConfig(
            rank=8,
            alpha=16.0,
            target_patterns=list(VIT_LORA_TARGET_PATTERNS),
            trainable_patterns=[HEAD_PATTERN],
        )
    )
    exp = _finetune_experiment(exp)
    durations.resolve(exp)
    return exp
