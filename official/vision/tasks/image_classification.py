"""Image classification: cross-entropy on logits, accuracy and top-k."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from official.core.base_task import Task
from official.core.experiment_config import DataConfig
from official.core.input_reader import InputReader
from official.core.task_factory import register_task
from official.vision.configs.image_classification import ImageClassificationTaskConfig
from official.vision.dataloaders import classification_input
from official.vision.dataloaders.classification_preprocessing import (
    center_crop_and_resize,
    decode_rgb,
    resize_for_serving,
)
from official.vision.dataloaders.image_normalization import normalize_image
from official.vision.models.factory import build_image_classifier
from official.vision.tasks import classification_parity
from official.vision.tasks.image_signatures import (
    DEFAULT_MAX_IMAGE_PIXELS,
    image_signatures,
)


@register_task(ImageClassificationTaskConfig)
class ImageClassificationTask(Task):
    """Classifies whole images into `model.num_classes` classes.

    Inputs are ImageNet-format tf.Examples (or a TFDS image dataset); the loss
    is softmax cross-entropy with optional label smoothing; metrics are
    accuracy and top-k accuracy.
    """

    config: ImageClassificationTaskConfig

    def build_model(self) -> keras.Model:
        return build_image_classifier(self.config.model)

    def build_inputs(
        self, data: DataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        return classification_input.build_classification_dataset(
            data, self.config.model, input_context
        )

    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        num_classes = self.config.model.num_classes
        if labels.shape.rank == 2:  # Soft labels from mixup / cutmix.
            targets = tf.cast(labels, tf.float32)
        else:
            targets = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        loss = keras.losses.categorical_crossentropy(
            targets,
            tf.cast(outputs, tf.float32),
            from_logits=True,
            label_smoothing=self.config.losses.label_smoothing,
        )
        loss = tf.reduce_mean(loss)
        if aux_losses:
            loss += tf.add_n([tf.cast(aux, tf.float32) for aux in aux_losses])
        return loss

    def update_metrics(self, metrics: list, labels: Any, outputs: Any) -> None:
        """Sparse metrics; soft labels (mixup / cutmix) count as their argmax."""
        if labels.shape.rank == 2:
            labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
        super().update_metrics(metrics, labels, outputs)

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        k = self.config.top_k
        return [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=f"top_{k}_accuracy"),
        ]

    # ---- export -----------------------------------------------------------

    def _outputs(
        self, model: keras.Model, images_float: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        logits = tf.cast(model(images_float, training=False), tf.float32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "classes": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }

    def _decode_one(self, encoded: tf.Tensor) -> tf.Tensor:
        """Image bytes -> the eval crop and resize (float32, not normalized)."""
        height, width, _ = self.config.model.input_size
        return center_crop_and_resize(
            decode_rgb(encoded),
            (height, width),
            self.config.validation_data.center_crop_fraction,
        )

    def serving_preprocessing(self) -> dict[str, Any]:
        """The resize/crop policy every serving signature and TFLite file applies.

        Written to `export_report.json` and `parity.json` by the export.
        """
        height, width, _ = self.config.model.input_size
        fraction = self.config.validation_data.center_crop_fraction
        return {
            "center_crop_fraction": fraction,
            "output_size": [height, width],
            "policy": (
                f"centered square crop of {fraction:g} x the shorter side, then "
                f"bilinear resize to {height}x{width}, then normalize_image "
                "(the evaluation transform)"
            ),
            "applied_by": [
                "image_tensor",
                "image_bytes",
                "tf_example",
                "serving_default",
                "tflite",
                "onnx",
            ],
        }

    def _preprocess(self, images: tf.Tensor) -> tf.Tensor:
        """uint8 `[batch, h, w, 3]` at any size -> the model's normalized input."""
        height, width, _ = self.config.model.input_size
        fraction = self.config.validation_data.center_crop_fraction
        return normalize_image(
            center_crop_and_resize(images, (height, width), fraction)
        )

    def serving_signatures(
        self, model: keras.Model, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ) -> dict[str, tuple]:
        """image_tensor (uint8, any size), image_bytes, tf_example.

        All three apply one preprocessing (`serving_preprocessing`): the
        evaluation crop and resize of the validation pipeline, then
        `normalize_image`, so the same picture gets the same answer through
        each of them and through the TFLite file.
        """
        height, width, _ = self.config.model.input_size

        def image_tensor(images):
            return self._outputs(model, self._preprocess(images))

        def image_bytes(image_bytes):
            images = tf.map_fn(
                self._decode_one,
                image_bytes,
                fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
            )
            return self._outputs(model, normalize_image(images))

        return image_signatures(
            image_tensor, image_bytes, max_image_pixels=max_image_pixels
        )

    def tflite_signature(self, model: keras.Model) -> tuple:
        """uint8 `[1, height, width, 3]` images, cropped and resized as the others.

        The input has the model's input size (TFLite needs a static shape); the
        evaluation crop is applied inside, as in `image_tensor`.
        """
        height, width, channels = self.config.model.input_size

        def image_tensor(images):
            return self._outputs(model, self._preprocess(images))

        spec = tf.TensorSpec([1, height, width, channels], tf.uint8, name="images")
        return image_tensor, [spec]

    def class_names(self) -> list[str]:
        """Class names by label, shipped as `labels.txt` beside the exports.

        From the validation data: the sorted class folders of an
        `image_folder` source, the `label` names of a TFDS dataset, or the
        `labels.txt` beside the first TFRecord file (written by the dataset
        converters in `tools/` and by `official.datasets.digits`). Empty when
        the source has none.

        Raises:
            ValueError: the names found are not `model.num_classes` many.
        """
        data = self.config.validation_data
        if data.input_format == "image_folder":
            names = InputReader(data, _identity, _identity).class_names
        elif data.tfds_name:
            import tensorflow_datasets as tfds

            builder = tfds.builder(data.tfds_name, data_dir=data.tfds_data_dir or None)
            features = builder.info.features
            has_label = features is not None and "label" in features.keys()
            label = features["label"] if has_label else None
            names = [str(name) for name in getattr(label, "names", None) or []]
        else:
            names = _labels_beside(data.input_path)
        if names and len(names) != self.config.model.num_classes:
            raise ValueError(
                f"The validation data names {len(names)} classes, but "
                f"task.model.num_classes is {self.config.model.num_classes}: "
                f"labels.txt would not match the model's outputs."
            )
        return names

    def serving_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation images as a client sends them, at the model's input size.

        Each image's central square, resized to the input size (uint8): every
        signature then applies the evaluation crop (`serving_preprocessing`).
        Read from the validation input in its own format (TFRecords, an image
        folder or TFDS).
        """
        data = self.config.validation_data
        data.check_source("task.validation_data")
        height, width, _ = self.config.model.input_size
        reader_config = data.copy()
        reader_config.global_batch_size = num_examples
        reader_config.drop_remainder = False

        def parse(decoded):
            image = resize_for_serving(
                decoded["image"][tf.newaxis], (height, width), 1.0
            )
            return image[0], decoded["label"]

        if data.tfds_name:
            decoder = classification_input.decode_tfds_example
        elif data.input_format == "image_folder":
            decoder = _decode_image_folder_record
        else:
            decoder = classification_input.decode_example
        dataset = InputReader(reader_config, decoder, parse).read()
        images, labels = next(iter(dataset))
        return images.numpy(), labels.numpy()

    # ---- parity (export) ----------------------------------------------------

    def parity_measures(
        self, reference: dict, candidate: dict, labels: Any
    ) -> dict[str, float]:
        """Probability and logit differences, top-1 agreement and accuracy drop."""
        return classification_parity.classification_measures(
            reference, candidate, labels
        )

    def parity_reference_measures(
        self, reference: dict, labels: Any
    ) -> dict[str, float]:
        """The Keras model's top-1 accuracy on the parity examples."""
        return classification_parity.classification_reference_measures(
            reference, labels
        )

    def parity_tolerance(
        self, kind: str
    ) -> classification_parity.ClassificationTolerance:
        """`classification_parity.CLASSIFICATION_TOLERANCES[kind]`."""
        return classification_parity.classification_tolerance(kind)


def _decode_image_folder_record(record: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """An image folder entry of the `InputReader` -> `{"image", "label"}`."""
    return {
        "image": decode_rgb(record["image/encoded"]),
        "label": tf.cast(record["image/class/label"], tf.int32),
    }


def _identity(x: Any) -> Any:
    return x


def _labels_beside(input_path: str) -> list[str]:
    """Lines of `labels.txt` in the directory of the first file `input_path`
    matches; empty when there is none."""
    pattern = input_path.split(",")[0].strip()
    files = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    if not files:
        return []
    path = os.path.join(os.path.dirname(files[0]), "labels.txt")
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return [line.strip() for line in f if line.strip()]
