"""Object detection with RetinaNet: focal loss, COCO mAP, detections in every export."""

from __future__ import annotations

import functools
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
from official.vision.configs.retinanet import (
    DetectionDataConfig,
    RetinaNetModelConfig,
    RetinaNetTaskConfig,
)
from official.vision.dataloaders import detection_input, detection_parser
from official.vision.dataloaders.image_normalization import MEAN_RGB, normalize_image
from official.vision.evaluation import coco_evaluator
from official.vision.losses import detection_losses
from official.vision.models.retinanet_model import build_retinanet_model
from official.vision.ops.anchor_generator import generate_anchors
from official.vision.ops.detection_generator import DetectionGenerator
from official.vision.ops.target_assigner import AnchorLabeler
from official.vision.tasks import detection_parity
from official.vision.tasks.image_signatures import (
    DEFAULT_MAX_IMAGE_PIXELS,
    image_signatures,
)


def _metric_name(class_name: str) -> str:
    """A summary-safe name for a class's AP metric: `AP/<name>`."""
    return "AP/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", class_name)


@register_task(RetinaNetTaskConfig)
class RetinaNetTask(Task):
    """Detects objects: boxes, classes and scores from images.

    Inputs are detection tf.Examples (`official/vision/dataloaders/
    detection_input.py`); labels are the anchor targets and the ground
    truth. The loss is focal loss plus `box_loss_weight` x Huber box loss
    over the positive anchors (summed over replicas). Evaluation runs the
    detection generator and reports pycocotools' COCO numbers (`AP`, `AP50`,
    `AP75`, `APs`, `APm`, `APl`, `ARmax1`, `ARmax10`, `ARmax100`, `ARs`,
    `ARm`, `ARl`) over the whole evaluation set, and the AP of each class
    with ground truth (`AP/<class name>`, in the eval report); under
    `multi_worker_mirrored` the workers' images are gathered first
    (`COCOMetric.merge_across_workers`), so every worker reports the
    numbers of the whole set.

    Exported signatures (`image_tensor`, `image_bytes`, `tf_example`, the
    TFLite file, and `model.onnx` with any batch size) return the final
    detections: `detection_boxes` float32
    `[batch, max_detections, 4]` as `[ymin, xmin, ymax, xmax]` normalized
    to the input image (0..1 of its height and width), `detection_scores`
    float32, `detection_classes` int32 (-1 past `num_detections`) and
    `num_detections` int32 `[batch]`. Images are resized to fit the model's
    input size (aspect ratio kept) and padded, as in evaluation.
    """

    config: RetinaNetTaskConfig

    @property
    def num_classes(self) -> int:
        """`model.num_classes`."""
        return self.config.model.num_classes

    def class_names(self) -> list[str]:
        """`class_names` of the config (an empty one becomes `class_<id>`)."""
        names = list(self.config.class_names) or [""] * self.num_classes
        return [name or f"class_{i}" for i, name in enumerate(names)]

    @functools.cached_property
    def anchors(self) -> np.ndarray:
        """float32 `[N, 4]` anchors of the model input (pixels)."""
        model: RetinaNetModelConfig = self.config.model
        anchor = model.anchor
        return generate_anchors(
            model.input_size[:2],
            model.min_level,
            model.max_level,
            anchor.num_scales,
            anchor.aspect_ratios,
            anchor.anchor_size,
        )

    @functools.cached_property
    def detection_generator(self) -> DetectionGenerator:
        """The post-processing of evaluation and of every export."""
        model: RetinaNetModelConfig = self.config.model
        generator = model.detection_generator
        return DetectionGenerator(
            self.anchors,
            model.input_size[:2],
            model.num_classes,
            pre_nms_top_k=generator.pre_nms_top_k,
            score_threshold=generator.score_threshold,
            iou_threshold=generator.iou_threshold,
            max_detections=generator.max_detections,
            nms_type=generator.nms_type,
            box_coder_weights=model.box_coder_weights,
        )

    def build_model(self) -> keras.Model:
        return build_retinanet_model(self.config.model)

    def anchor_labeler(self) -> AnchorLabeler:
        """Turns one image's boxes into the per-level anchor targets of training."""
        matcher = self.config.matcher
        return AnchorLabeler(
            self.anchors,
            match_threshold=matcher.match_threshold,
            unmatched_threshold=matcher.unmatched_threshold,
            allow_low_quality_matches=matcher.allow_low_quality_matches,
            crowd_ioa_threshold=matcher.crowd_ioa_threshold,
            box_coder_weights=self.config.model.box_coder_weights,
        )

    def _parser(self, data: DetectionDataConfig) -> detection_parser.DetectionParser:
        return detection_parser.DetectionParser(
            self.config.model.input_size[:2],
            self.anchor_labeler(),
            is_training=data.is_training,
            aug_rand_hflip=data.aug_rand_hflip,
            aug_scale_min=data.aug_scale_min,
            aug_scale_max=data.aug_scale_max,
            max_num_boxes=data.max_num_boxes,
        )

    def build_inputs(
        self, data: DataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        return detection_input.build_detection_dataset(
            data, self._parser(data), input_context
        )

    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        losses = self.config.losses
        loss = detection_losses.retinanet_loss(
            outputs,
            labels,
            alpha=losses.focal_alpha,
            gamma=losses.focal_gamma,
            huber_delta=losses.huber_delta,
            box_loss_weight=losses.box_loss_weight,
        )["total"]
        if aux_losses:
            loss += tf.add_n([tf.cast(aux, tf.float32) for aux in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        if training:
            return []
        source = coco_evaluator.COCOMetric(self.num_classes, name="AP")
        views = [
            coco_evaluator.COCOView(source, key)
            for key in coco_evaluator.METRIC_NAMES[1:]
        ]
        views += [
            coco_evaluator.COCOView(source, i, name=_metric_name(name))
            for i, name in enumerate(self.class_names())
        ]
        return [source, *views]

    def update_metrics(self, metrics: list, labels: Any, outputs: Any) -> None:
        if not metrics:
            return
        detections = self.detection_generator(
            outputs["cls_outputs"], outputs["box_outputs"]
        )
        for metric in metrics:
            metric.update_state(labels, detections)

    def eval_report(self, logs: dict[str, float]) -> str:
        """The AP of each class with ground truth in the evaluation set."""
        rows = [
            (name, logs[_metric_name(name)])
            for name in self.class_names()
            if logs.get(_metric_name(name), -1.0) >= 0
        ]
        if not rows:
            return ""
        width = max(len(name) for name, _ in rows)
        lines = [f"{'class':<{width}}  AP"]
        lines += [f"{name:<{width}}  {value:.4f}" for name, value in rows]
        lines.append(f"{'mean':<{width}}  {logs.get('AP', float('nan')):.4f}")
        return "\n".join(lines)

    # ---- export -----------------------------------------------------------

    def _detect(self, model: keras.Model, images: tf.Tensor, sizes: tf.Tensor) -> dict:
        """Model-input images (float 0..255) -> detections normalized to `sizes`.

        `sizes` float32 `[b, 2]`: each image's resized height and width inside
        the padded model input.
        """
        outputs = model(normalize_image(images), training=False)
        detections = self.detection_generator(
            outputs["cls_outputs"], outputs["box_outputs"]
        )
        scale = tf.concat([sizes, sizes], axis=-1)[:, tf.newaxis, :]
        boxes = tf.clip_by_value(detections["detection_boxes"] / scale, 0.0, 1.0)
        return {**detections, "detection_boxes": boxes}

    def _fit(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """A batch of same-size images -> padded model input and resized sizes."""
        height, width, _ = self.config.model.input_size
        size = tf.cast(tf.shape(images)[1:3], tf.float32)
        scale = tf.minimum(height / size[0], width / size[1])
        new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
        resized = tf.image.resize(tf.cast(images, tf.float32), new_size)
        mean = tf.constant(MEAN_RGB, tf.float32)
        pad = [[0, 0], [0, height - new_size[0]], [0, width - new_size[1]], [0, 0]]
        padded = tf.pad(resized - mean, pad) + mean
        padded.set_shape([None, height, width, 3])
        sizes = tf.tile(
            tf.cast(new_size, tf.float32)[tf.newaxis], [tf.shape(images)[0], 1]
        )
        return padded, sizes

    def serving_preprocessing(self) -> dict[str, Any]:
        """The resize policy every signature shares (for `parity.json`)."""
        height, width, _ = self.config.model.input_size
        return {
            "resize": "fit inside the input size, aspect ratio kept (bilinear)",
            "pad": "bottom and right, mean pixel",
            "input_size": [height, width],
            "boxes": "[ymin, xmin, ymax, xmax] normalized to the input image",
        }

    def serving_signatures(
        self, model: keras.Model, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ) -> dict[str, tuple]:
        """image_tensor (uint8, any size), image_bytes, tf_example -> detections."""
        height, width, channels = self.config.model.input_size

        def image_tensor(images):
            return self._detect(model, *self._fit(images))

        def decode(encoded):
            image = tf.io.decode_image(
                encoded, channels=channels, expand_animations=False
            )
            image.set_shape([None, None, channels])
            padded, sizes = self._fit(image[tf.newaxis])
            return padded[0], sizes[0]

        def image_bytes(image_bytes):
            images, sizes = tf.map_fn(
                decode,
                image_bytes,
                fn_output_signature=(
                    tf.TensorSpec([height, width, channels], tf.float32),
                    tf.TensorSpec([2], tf.float32),
                ),
            )
            return self._detect(model, images, sizes)

        return image_signatures(
            image_tensor, image_bytes, channels, max_image_pixels=max_image_pixels
        )

    def tflite_signature(self, model: keras.Model) -> tuple:
        """uint8 `[1, height, width, 3]` at the model's input size -> detections."""
        height, width, channels = self.config.model.input_size

        def image_tensor(images):
            sizes = tf.constant([[height, width]], tf.float32)
            return self._detect(model, tf.cast(images, tf.float32), sizes)

        spec = tf.TensorSpec([1, height, width, channels], tf.uint8, name="images")
        return image_tensor, [spec]

    def serving_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation images fitted and padded to the input size (uint8) and
        their boxes: float32 `[N, max_num_boxes, 6]` (ymin, xmin, ymax, xmax
        in input pixels, class (-1: padding), is_crowd)."""
        data = self.config.validation_data
        data.check_source("task.validation_data")
        height, width, _ = self.config.model.input_size
        reader_config = data.copy()
        reader_config.global_batch_size = num_examples
        reader_config.drop_remainder = False
        count = data.max_num_boxes

        def parse(decoded):
            size = tf.cast(tf.shape(decoded["image"])[:2], tf.float32)
            boxes = decoded["boxes"] * tf.tile(size, [2])
            image, boxes, _ = detection_parser.resize_and_pad(
                decoded["image"], boxes, (height, width)
            )
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            rows = tf.concat(
                [
                    boxes,
                    tf.cast(decoded["classes"], tf.float32)[:, tf.newaxis],
                    tf.cast(decoded["is_crowd"], tf.float32)[:, tf.newaxis],
                ],
                axis=1,
            )
            padding = tf.constant([[0, 0, 0, 0, -1, 0]], tf.float32)
            rows = tf.concat([rows[:count], tf.tile(padding, [count, 1])], axis=0)
            return image, rows[:count]

        dataset = InputReader(
            reader_config, detection_input.decode_example, parse
        ).read()
        images, labels = next(iter(dataset))
        return images.numpy(), labels.numpy()

    # ---- parity (export) ---------------------------------------------------

    def parity_measures(
        self, reference: dict, candidate: dict, labels: Any
    ) -> dict[str, float]:
        """Matched fraction of Keras' detections and the mAP difference."""
        return detection_parity.detection_measures(
            reference,
            candidate,
            labels,
            self.config.model.input_size[:2],
            self.num_classes,
        )

    def parity_reference_measures(
        self, reference: dict, labels: Any
    ) -> dict[str, float]:
        """The Keras model's COCO AP on the parity examples."""
        ap = detection_parity.mean_ap(
            reference, labels, self.config.model.input_size[:2], self.num_classes
        )
        return {"map": ap}

    def parity_tolerance(self, kind: str) -> Bounds:
        """`detection_parity.DETECTION_TOLERANCES[kind]`."""
        return detection_parity.detection_tolerance(kind)
