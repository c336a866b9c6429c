"""The task families `tools/benchmark_train.py` times, and their synthetic batches.

Each family knows how to set an experiment up for the benchmark, which
synthetic batch its train step takes, the input its FLOPs are counted at,
and the settings of tf-models-official's counterpart (for
`--reference=tf_models_official`, run by `tools/tfm_reference_step.py`):

- `classification` (`ImageClassificationTaskConfig`): standard-normal
  images and random int32 labels. Reference: tf-models-official's
  `resnet_imagenet` with the same ResNet depth.
- `retinanet` (`RetinaNetTaskConfig`): standard-normal images and
  `BOXES_PER_IMAGE` random ground-truth boxes per image with random classes
  (`synthetic_boxes`). Garden's batch holds the anchor targets of Garden's
  `AnchorLabeler` for those boxes; the reference makes its own from the
  same boxes with tf-models-official's anchor labeler. Reference: its
  `retinanet_resnetfpn_coco` with the same ResNet depth, levels, anchors,
  FPN and head widths, matching thresholds and loss constants.
- `sentence_prediction` (`SentencePredictionTaskConfig`): packed int32
  `input_word_ids` (`[CLS]`, random non-special ids, `[SEP]`, then
  `[PAD]` to a random length between half and all of the sequence),
  `input_mask`, `input_type_ids` (0) and random labels, so tokenization is
  never timed. Without `task.preprocessing.vocab_file` the benchmark writes
  a vocabulary of `VOCAB_SIZE` tokens (the size of BERT's uncased one), so
  the embedding is BERT's size. Reference: tf-models-official's
  `bert/sentence_prediction` with a BERT encoder of the same shape.

Both sides train on the same arrays (`Family.arrays`); each is handed the
format its own task's input pipeline produces.

Example:
```python
from tools import benchmark_families

boxes, classes = benchmark_families.synthetic_boxes(2, 64, 64, 91, seed=0)
assert boxes.shape == (2, 8, 4) and classes.shape == (2, 8)
assert 1 <= classes.min() and classes.max() < 91
assert (boxes[..., 2] > boxes[..., 0]).all() and boxes.max() <= 64
```
"""

from __future__ import annotations

import abc
import os
import tempfile

import numpy as np

BOXES_PER_IMAGE = 8  # about COCO's mean number of objects per image (7.3)
VOCAB_SIZE = 30522  # BERT's uncased WordPiece vocabulary


def synthetic_boxes(
    batch: int,
    height: int,
    width: int,
    num_classes: int,
    count: int = BOXES_PER_IMAGE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random ground truth: float32 `[batch, count, 4]` boxes and int32 classes.

    Boxes are `[ymin, xmin, ymax, xmax]` in pixels inside the image, with
    sides of 5 to 50 % of the image (aspect ratio 1:2 to 2:1); classes are
    drawn from `1..num_classes - 1` (0 is the background id of COCO's
    numbering).
    """
    if num_classes < 2:
        raise ValueError(
            f"Synthetic boxes need num_classes >= 2 (0 is background). "
            f"Received: {num_classes}."
        )
    rng = np.random.default_rng([seed, 7])
    side = rng.uniform(0.05, 0.5, (batch, count))
    ratio = np.exp(rng.uniform(-0.35, 0.35, (batch, count)))
    box_h = np.minimum(side * ratio, 1.0) * height
    box_w = np.minimum(side / ratio, 1.0) * width
    ymin = rng.uniform(0.0, 1.0, (batch, count)) * (height - box_h)
    xmin = rng.uniform(0.0, 1.0, (batch, count)) * (width - box_w)
    boxes = np.stack([ymin, xmin, ymin + box_h, xmin + box_w], axis=-1)
    classes = rng.integers(1, num_classes, (batch, count), dtype=np.int32)
    return boxes.astype(np.float32), classes


def synthetic_vocabulary(size: int = VOCAB_SIZE) -> str:
    """Path of a vocabulary of `size` tokens: the special ones, then `tok<i>`.

    Written once under the temporary directory (the content depends only on
    `size`).
    """
    from official.nlp.tokenization.vocabulary import SPECIAL_TOKENS

    if size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"The vocabulary size must be > {len(SPECIAL_TOKENS)}. Received: {size}."
        )
    tokens = [*SPECIAL_TOKENS, *(f"tok{i}" for i in range(len(SPECIAL_TOKENS), size))]
    path = os.path.join(tempfile.gettempdir(), f"garden_benchmark_vocab_{size}.txt")
    text = "".join(f"{token}\n" for token in tokens)
    if not os.path.exists(path) or os.path.getsize(path) != len(text):
        partial = f"{path}.{os.getpid()}"
        with open(partial, "w") as f:
            f.write(text)
        os.replace(partial, path)
    return path


def _images(batch: int, input_size, seed: int, pipeline: int) -> np.ndarray:
    rng = np.random.default_rng([seed, pipeline, 1])
    return rng.standard_normal((batch, *input_size), dtype=np.float32)


class Family(abc.ABC):
    """One task family: its batch, FLOP input and reference settings."""

    name = ""
    config_class = ""  # the task config's class name, for messages
    reference_experiment = ""

    @abc.abstractmethod
    def matches(self, task) -> bool:
        """Whether `task` (a task config) belongs to this family."""

    def overrides(self, task, image_size: int | None, seq_length: int | None) -> dict:
        """Config items for the requested input size."""
        if seq_length is not None:
            raise ValueError(
                f"--seq_length applies to text experiments; {task.__class__.__name__}"
                " takes images (use --image_size)."
            )
        if image_size is None:
            return {}
        channels = task.model.input_size[-1]
        return {"task.model.input_size": [image_size, image_size, channels]}

    def finish(self, config) -> None:  # noqa: B027 (most families need nothing)
        """Completes a loaded config (in place) for a run on synthetic input."""

    def input_shape(self, config) -> tuple:
        """The per-example input `tools/model_summary.count_flops` takes."""
        return tuple(config.task.model.input_size)

    @abc.abstractmethod
    def arrays(self, config, batch: int, pipeline: int = 0, seed: int = 0) -> dict:
        """The batch both sides train on, as numpy arrays."""

    @abc.abstractmethod
    def training_batch(self, config, arrays: dict) -> tuple:
        """`(features, labels)` as Garden's task's training input gives them."""

    @abc.abstractmethod
    def reference_spec(self, config) -> dict:
        """tf-models-official's model and input settings for `config`.

        Raises:
            ValueError: naming what has no counterpart there.
        """


class Classification(Family):
    name = "classification"
    config_class = "ImageClassificationTaskConfig"
    reference_experiment = "resnet_imagenet"

    def matches(self, task) -> bool:
        from official.vision.configs.image_classification import (
            ImageClassificationTaskConfig,
        )

        return isinstance(task, ImageClassificationTaskConfig)

    def arrays(self, config, batch, pipeline=0, seed=0):
        model = config.task.model
        rng = np.random.default_rng([seed, pipeline, 2])
        labels = rng.integers(0, model.num_classes, (batch,), dtype=np.int32)
        return {
            "images": _images(batch, model.input_size, seed, pipeline),
            "labels": labels,
        }

    def training_batch(self, config, arrays):
        return arrays["images"], arrays["labels"]

    def reference_spec(self, config):
        task = config.task
        backbone = task.model.backbone
        if backbone.type != "resnet":
            raise ValueError(
                "--reference=tf_models_official compares ResNet classifiers (its "
                f"resnet_imagenet experiment). Received: backbone {backbone.type!r}."
            )
        data = task.train_data
        if getattr(data, "mixup_alpha", 0) or getattr(data, "cutmix_alpha", 0):
            raise ValueError(
                "--reference=tf_models_official needs integer labels: turn mixup and "
                "cutmix off (task.train_data.mixup_alpha=0, cutmix_alpha=0)."
            )
        return {
            "model_id": int(backbone.params.get("model_id", 50)),
            "input_size": list(task.model.input_size),
            "num_classes": task.model.num_classes,
        }


class RetinaNet(Family):
    name = "retinanet"
    config_class = "RetinaNetTaskConfig"
    reference_experiment = "retinanet_resnetfpn_coco"

    def matches(self, task) -> bool:
        from official.vision.configs.retinanet import RetinaNetTaskConfig

        return isinstance(task, RetinaNetTaskConfig)

    def arrays(self, config, batch, pipeline=0, seed=0):
        model = config.task.model
        height, width, _ = model.input_size
        boxes, classes = synthetic_boxes(
            batch, height, width, model.num_classes, seed=seed * 1000 + pipeline
        )
        images = _images(batch, model.input_size, seed, pipeline)
        return {"images": images, "boxes": boxes, "classes": classes}

    def training_batch(self, config, arrays):
        """Images and the stacked targets of Garden's `AnchorLabeler` (its parser's)."""
        import tensorflow as tf

        from official.core import task_factory

        labeler = task_factory.get_task(config.task).anchor_labeler()
        crowd = np.zeros(arrays["classes"].shape[1:], np.int32)
        per_image = [
            labeler(boxes, classes, crowd)
            for boxes, classes in zip(arrays["boxes"], arrays["classes"])
        ]
        labels = {
            key: tf.stack([targets[key] for targets in per_image])
            for key in per_image[0]
        }
        return arrays["images"], labels

    def reference_spec(self, config):
        task = config.task
        model = task.model
        backbone = model.backbone
        if backbone.type != "resnet" or set(backbone.params) - {"model_id"}:
            raise ValueError(
                "--reference=tf_models_official compares RetinaNet on a plain ResNet "
                "(its retinanet_resnetfpn_coco experiment; only model_id may be set). "
                f"Received: backbone {backbone.type!r} with {backbone.params}."
            )
        if model.decoder.type != "fpn":
            raise ValueError(
                f"--reference=tf_models_official needs the FPN decoder. Received: "
                f"{model.decoder.type!r}."
            )
        losses, matcher = task.losses, task.matcher
        return {
            "model_id": int(backbone.params.get("model_id", 50)),
            "input_size": list(model.input_size),
            "num_classes": model.num_classes,
            "min_level": model.min_level,
            "max_level": model.max_level,
            "num_scales": model.anchor.num_scales,
            "aspect_ratios": list(model.anchor.aspect_ratios),
            "anchor_size": model.anchor.anchor_size,
            "decoder_filters": model.decoder.num_filters,
            "head_convs": model.head.num_convs,
            "head_filters": model.head.num_filters,
            "match_threshold": matcher.match_threshold,
            "unmatched_threshold": matcher.unmatched_threshold,
            "box_coder_weights": list(model.box_coder_weights) or None,
            "focal_alpha": losses.focal_alpha,
            "focal_gamma": losses.focal_gamma,
            "huber_delta": losses.huber_delta,
            "box_loss_weight": losses.box_loss_weight,
        }


class SentencePrediction(Family):
    name = "sentence_prediction"
    config_class = "SentencePredictionTaskConfig"
    reference_experiment = "bert/sentence_prediction"

    def matches(self, task) -> bool:
        from official.nlp.configs.sentence_prediction import (
            SentencePredictionTaskConfig,
        )

        return isinstance(task, SentencePredictionTaskConfig)

    def overrides(self, task, image_size, seq_length):
        if image_size is not None:
            raise ValueError(
                "--image_size applies to image experiments; "
                f"{task.__class__.__name__} takes text (use --seq_length)."
            )
        if seq_length is None:
            return {}
        return {"task.preprocessing.seq_length": seq_length}

    def finish(self, config):
        if not config.task.preprocessing.vocab_file:
            config.task.preprocessing.vocab_file = synthetic_vocabulary()

    def input_shape(self, config):
        return ("tokens", config.task.preprocessing.seq_length)

    def arrays(self, config, batch, pipeline=0, seed=0):
        from official.nlp.tokenization.vocabulary import (
            SPECIAL_TOKENS,
            load_vocabulary,
            special_ids,
        )

        tokens = load_vocabulary(config.task.preprocessing.vocab_file)
        ids = special_ids(tokens)
        length = config.task.preprocessing.seq_length
        specials = [tokens.index(t) for t in SPECIAL_TOKENS]
        ordinary = np.setdiff1d(np.arange(len(tokens)), specials).astype(np.int32)
        rng = np.random.default_rng([seed, pipeline, 3])
        word_ids = np.full((batch, length), ids["pad"], np.int32)
        mask = np.zeros((batch, length), np.int32)
        for row, used in enumerate(
            rng.integers(max(2, length // 2), length + 1, batch)
        ):
            word_ids[row, 0] = ids["cls"]
            word_ids[row, 1 : used - 1] = rng.choice(ordinary, used - 2)
            word_ids[row, used - 1] = ids["sep"]
            mask[row, :used] = 1
        num_classes = config.task.model.num_classes
        if num_classes == 1:
            labels = rng.standard_normal(batch).astype(np.float32)
        else:
            labels = rng.integers(0, num_classes, (batch,), dtype=np.int32)
        return {
            "input_word_ids": word_ids,
            "input_mask": mask,
            "input_type_ids": np.zeros_like(word_ids),
            "labels": labels,
        }

    def training_batch(self, config, arrays):
        from official.nlp.encoders.bert_encoder import INPUT_NAMES

        return {name: arrays[name] for name in INPUT_NAMES}, arrays["labels"]

    def reference_spec(self, config):
        from official.nlp.encoders.bert_encoder import BertEncoder
        from official.nlp.tokenization.vocabulary import load_vocabulary

        task = config.task
        encoder = task.model.encoder
        if encoder.type != "bert":
            raise ValueError(
                "--reference=tf_models_official compares BERT encoders (its "
                f"bert/sentence_prediction experiment). Received: {encoder.type!r}."
            )
        if task.model.num_classes < 2:
            raise ValueError(
                "--reference=tf_models_official compares classification; regression "
                "(model.num_classes=1) has no comparison."
            )
        params = encoder.params
        arch = BertEncoder.resolve_architecture(params)
        return {
            "vocab_size": len(load_vocabulary(task.preprocessing.vocab_file)),
            "hidden_size": arch["hidden_size"],
            "num_layers": arch["num_layers"],
            "num_heads": arch["num_heads"],
            "intermediate_size": arch["intermediate_size"],
            "max_sequence_length": int(params.get("max_sequence_length", 512)),
            "type_vocab_size": int(params.get("type_vocab_size", 2)),
            "dropout_rate": float(params.get("dropout_rate", 0.1)),
            "attention_dropout_rate": float(params.get("attention_dropout_rate", 0.1)),
            "seq_length": task.preprocessing.seq_length,
            "num_classes": task.model.num_classes,
            "classifier_dropout": task.model.dropout_rate,
        }


FAMILIES = (Classification(), RetinaNet(), SentencePrediction())


def family_of(task) -> Family:
    """The family of a task config.

    Raises:
        ValueError: naming the config class and the supported ones.
    """
    for family in FAMILIES:
        if family.matches(task):
            return family
    supported = ", ".join(f"{f.config_class} ({f.name})" for f in FAMILIES)
    raise ValueError(
        f"benchmark_train times {supported}. Received: a {type(task).__name__}."
    )
