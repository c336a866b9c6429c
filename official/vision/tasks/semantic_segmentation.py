"""Semantic segmentation: per-pixel cross-entropy, mIoU, class-map export."""

from __future__ import annotations

import re
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from official.core.base_task import Task
from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader
from official.core.parity_measures import Bounds
from official.core.task_factory import register_task
from official.vision.configs.semantic_segmentation import SemanticSegmentationTaskConfig
from official.vision.dataloaders import segmentation_input
from official.vision.dataloaders.image_normalization import normalize_image
from official.vision.evaluation.segmentation_metrics import (
    ClassIoU,
    ConfusionMatrixMeanIoU,
    PixelAccuracy,
)
from official.vision.losses import segmentation_losses
from official.vision.models.segmentation_factory import build_segmentation_model
from official.vision.tasks import segmentation_parity
from official.vision.tasks.image_signatures import (
    DEFAULT_MAX_IMAGE_PIXELS,
    image_signatures,
)


def _metric_name(class_name: str) -> str:
    """A summary-safe name for a class's IoU metric: `iou/<name>`."""
    return "iou/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", class_name)


@register_task(SemanticSegmentationTaskConfig)
class SemanticSegmentationTask(Task):
    """Labels every pixel with one of `model.num_classes` classes.

    Inputs are segmentation tf.Examples (PNG class masks, `ignore_label`
    for pixels that do not count). The loss is per-pixel cross-entropy
    (class weights, top-k pixel mining), plus the auxiliary head's and
    EncNet's SE loss when configured. Metrics come from one confusion matrix
    per evaluation: `mean_iou`, `pixel_accuracy` and, in evaluation,
    `iou/<class name>` per class (NaN for a class absent from labels and
    predictions). Exported signatures return the class map (and, with
    `export_logits`, the logits) at each input image's resolution.
    """

    config: SemanticSegmentationTaskConfig

    @property
    def num_classes(self) -> int:
        """`model.num_classes`."""
        return self.config.model.num_classes

    @property
    def ignore_label(self) -> int:
        """`losses.ignore_label`: pixels with it count in no loss or metric."""
        return self.config.losses.ignore_label

    def class_names(self) -> list[str]:
        """`class_names` of the config, or `class_0`, `class_1`, ..."""
        return list(self.config.class_names) or [
            f"class_{i}" for i in range(self.num_classes)
        ]

    def build_model(self) -> keras.Model:
        return build_segmentation_model(self.config.model)

    def build_inputs(
        self, data: DataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        return segmentation_input.build_segmentation_dataset(
            data, self.config.model, self.ignore_label, input_context
        )

    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        losses = self.config.losses

        def pixel_loss(logits):
            return segmentation_losses.pixel_cross_entropy(
                labels,
                logits,
                ignore_label=losses.ignore_label,
                class_weights=losses.class_weights,
                top_k_percent_pixels=losses.top_k_percent_pixels,
            )

        loss = pixel_loss(outputs["logits"])
        if "aux_logits" in outputs:
            loss += losses.aux_loss_weight * pixel_loss(outputs["aux_logits"])
        if "se_logits" in outputs:
            loss += losses.se_loss_weight * segmentation_losses.se_loss(
                labels, outputs["se_logits"], losses.ignore_label
            )
        if aux_losses:
            loss += tf.add_n([tf.cast(aux, tf.float32) for aux in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        miou = ConfusionMatrixMeanIoU(
            self.num_classes, self.ignore_label, name="mean_iou"
        )
        metrics = [miou, PixelAccuracy(miou)]
        if not training:
            metrics += [
                ClassIoU(miou, i, name=_metric_name(name))
                for i, name in enumerate(self.class_names())
            ]
        return metrics

    def eval_report(self, logs: dict[str, float]) -> str:
        """The per-class IoU table of an evaluation (NaN: class never seen)."""
        names = self.class_names()
        width = max(len(name) for name in names)
        lines = [f"{'class':<{width}}  IoU"]
        for name in names:
            value = logs.get(_metric_name(name), float("nan"))
            lines.append(f"{name:<{width}}  {value:.4f}")
        lines.append(f"{'mean':<{width}}  {logs.get('mean_iou', float('nan')):.4f}")
        return "\n".join(lines)

    def update_metrics(self, metrics: list, labels: Any, outputs: Any) -> None:
        classes = tf.argmax(outputs["logits"], axis=-1, output_type=tf.int32)
        for metric in metrics:
            metric.update_state(labels, classes)

    # ---- export -----------------------------------------------------------

    def _segment(self, model: keras.Model, images: tf.Tensor, height, width) -> dict:
        """float `[b, H, W, 3]` (0..255, model input size) -> outputs at `(height, width)`."""
        normalized = normalize_image(images)
        logits = tf.cast(model(normalized, training=False)["logits"], tf.float32)
        static = isinstance(height, int) and isinstance(width, int)
        if not (static and tuple(logits.shape[1:3]) == (height, width)):
            logits = tf.image.resize(
                logits, tf.stack([height, width]), method="bilinear"
            )
        outputs = {"classes": tf.argmax(logits, axis=-1, output_type=tf.int32)}
        if self.config.export_logits:
            outputs["logits"] = logits
        return outputs

    def _to_input_size(self, images: tf.Tensor) -> tf.Tensor:
        height, width, _ = self.config.model.input_size
        return tf.image.resize(tf.cast(images, tf.float32), (height, width))

    def serving_signatures(
        self, model: keras.Model, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ) -> dict[str, tuple]:
        """image_tensor (uint8, any size), image_bytes, tf_example.

        Every image is resized (bilinear) to the model's input size; the
        logits are resized back to the image's own size, so `classes` (int32)
        is the class map at the input resolution. `image_bytes` and
        `tf_example` decode each image (sizes may differ within a batch):
        their maps are padded to the batch's largest size with -1 (logits
        with 0), and `image_sizes` (int32 `[b, 2]`) gives each image's size.
        """
        height, width, channels = self.config.model.input_size

        def image_tensor(images):
            shape = tf.shape(images)
            return self._segment(model, self._to_input_size(images), shape[1], shape[2])

        def decode(encoded):
            image = tf.io.decode_image(
                encoded, channels=channels, expand_animations=False
            )
            image.set_shape([None, None, channels])
            return self._to_input_size(image[tf.newaxis])[0], tf.shape(image)[:2]

        def image_bytes(image_bytes):
            resized, sizes = tf.map_fn(
                decode,
                image_bytes,
                fn_output_signature=(
                    tf.TensorSpec([height, width, channels], tf.float32),
                    tf.TensorSpec([2], tf.int32),
                ),
            )
            normalized = normalize_image(resized)
            logits = tf.cast(model(normalized, training=False)["logits"], tf.float32)
            max_size = tf.reduce_max(sizes, axis=0)

            def restore(args):
                one_logits, size = args
                one_logits = tf.image.resize(one_logits[tf.newaxis], size)[0]
                pad = [[0, max_size[0] - size[0]], [0, max_size[1] - size[1]]]
                classes = tf.pad(
                    tf.argmax(one_logits, axis=-1, output_type=tf.int32),
                    pad,
                    constant_values=-1,
                )
                return classes, tf.pad(one_logits, pad + [[0, 0]])

            classes, full_logits = tf.map_fn(
                restore,
                (logits, sizes),
                fn_output_signature=(
                    tf.TensorSpec([None, None], tf.int32),
                    tf.TensorSpec([None, None, self.num_classes], tf.float32),
                ),
            )
            outputs = {"classes": classes, "image_sizes": sizes}
            if self.config.export_logits:
                outputs["logits"] = full_logits
            return outputs

        return image_signatures(
            image_tensor, image_bytes, channels, max_image_pixels=max_image_pixels
        )

    def tflite_signature(self, model: keras.Model) -> tuple:
        """uint8 `[1, height, width, 3]` at the model's input size -> class map."""
        height, width, channels = self.config.model.input_size

        def image_tensor(images):
            return self._segment(model, tf.cast(images, tf.float32), height, width)

        spec = tf.TensorSpec([1, height, width, channels], tf.uint8, name="images")
        return image_tensor, [spec]

    def serving_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation images resized to the input size (uint8) and their masks (nearest)."""
        data = self.config.validation_data
        data.check_source("task.validation_data")
        height, width, _ = self.config.model.input_size
        reader_config = data.copy()
        reader_config.global_batch_size = num_examples
        reader_config.drop_remainder = False

        def parse(decoded):
            image, label = segmentation_input.resize_pair(
                decoded["image"], decoded["label"], (height, width)
            )
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            return image, tf.cast(label[:, :, 0], tf.int32)

        dataset = InputReader(
            reader_config, segmentation_input.decode_example, parse
        ).read()
        images, labels = next(iter(dataset))
        return images.numpy(), labels.numpy()

    # ---- parity (export) -------------------------------------------------------

    def parity_measures(
        self, reference: dict, candidate: dict, labels: Any
    ) -> dict[str, float]:
        """Pixel agreement of the class maps and the mIoU difference."""
        return segmentation_parity.segmentation_measures(
            reference["classes"],
            candidate["classes"],
            labels,
            self.num_classes,
            self.ignore_label,
        )

    def parity_reference_measures(
        self, reference: dict, labels: Any
    ) -> dict[str, float]:
        """The Keras model's mIoU on the parity examples."""
        miou = segmentation_parity.mean_iou(
            reference["classes"], labels, self.num_classes, self.ignore_label
        )
        return {"miou": miou}

    def parity_tolerance(self, kind: str) -> Bounds:
        """`segmentation_parity.SEGMENTATION_TOLERANCES[kind]`."""
        return segmentation_parity.segmentation_tolerance(kind)
