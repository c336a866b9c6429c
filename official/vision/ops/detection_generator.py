"""Raw RetinaNet outputs -> final detections: decode, top-k, score threshold, NMS.

One generator serves evaluation and every export (SavedModel signatures,
TFLite, ONNX), so what is measured is what is deployed. Per image:

1. class probabilities `sigmoid(logits)` `[N, C]`; boxes decoded from the
   regression outputs and their anchors (`box_ops.decode_boxes`), clipped
   to the input image;
2. the `pre_nms_top_k` highest (anchor, class) scores over all anchors and
   classes;
3. non-maximum suppression, dropping scores at or below `score_threshold`:
   - `nms_type="per_class"`: one suppression per class over the candidates
     of that class (each keeping at most `max_detections`), then the
     `max_detections` best of all classes;
   - `nms_type="class_agnostic"`: one suppression over all candidates,
     whatever their class (a box suppresses overlapping boxes of any
     class).

   A batch of one image (the TFLite signature) runs
   `tf.image.non_max_suppression_padded` (TFLite's builtin
   NON_MAX_SUPPRESSION_V4, so TFLite files need no Flex op; a fixed loop
   over the classes). Any other batch, of any or unknown size
   (evaluation, SavedModel signatures, the ONNX file), runs one
   `tf.image.combined_non_max_suppression` over the whole batch, with no
   per-image loop: tf2onnx maps it to ONNX NonMaxSuppression, so the ONNX
   file keeps an open batch size. Both keep the same detections (ties in
   score aside). Suppression runs on boxes normalized to the input size,
   so IoUs do not depend on the image size in pixels.
4. fixed-size outputs: `detection_boxes` float32 `[B, max_detections, 4]`
   (ymin, xmin, ymax, xmax in input pixels), `detection_scores` float32
   `[B, max_detections]`, `detection_classes` int32 `[B, max_detections]`
   and `num_detections` int32 `[B]`; rows past `num_detections` hold zero
   boxes and scores and class -1. Rows are sorted by score.

Example:
```python
import numpy as np
from official.vision.ops.detection_generator import DetectionGenerator

anchors = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
generator = DetectionGenerator(anchors, (32, 32), num_classes=2, max_detections=5)
logits = np.full((1, 3, 2), -10.0, np.float32)
logits[0, :, 1] = [3.0, 2.0, 1.0]  # class 1; anchors 0 and 1 overlap (IoU 0.68)
out = generator(logits, np.zeros((1, 3, 4), np.float32))
assert out["num_detections"].numpy().tolist() == [2]
assert out["detection_classes"].numpy()[0, :2].tolist() == [1, 1]
assert np.allclose(out["detection_boxes"].numpy()[0, 1], [20, 20, 30, 30])
```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from official.vision.ops import box_ops

NMS_TYPES = ("per_class", "class_agnostic")


class DetectionGenerator:
    """Turns a batch of raw head outputs into final detections.

    Args:
        anchors: float32 `[N, 4]` anchors in input pixels.
        image_size: `(height, width)` of the model input.
        num_classes: int, classes of the head (C).
        pre_nms_top_k: candidates kept before suppression. Default 1000.
        score_threshold: scores at or below it are dropped. Default 0.05.
        iou_threshold: suppression IoU. Default 0.5.
        max_detections: detections per image. Default 100.
        nms_type: one of `NMS_TYPES`. Default "per_class".
        box_coder_weights: the box coder's weights, or None.

    Call arguments:
        cls_outputs: float `[B, N, C]` class logits.
        box_outputs: float `[B, N, 4]` box regression outputs.

    Returns:
        dict of `detection_boxes`, `detection_scores`, `detection_classes`,
        `num_detections` (see the module docstring).
    """

    def __init__(
        self,
        anchors,
        image_size: Sequence[int],
        num_classes: int,
        pre_nms_top_k: int = 1000,
        score_threshold: float = 0.05,
        iou_threshold: float = 0.5,
        max_detections: int = 100,
        nms_type: str = "per_class",
        box_coder_weights: Sequence[float] | None = None,
    ):
        if nms_type not in NMS_TYPES:
            raise ValueError(
                f"nms_type must be one of {', '.join(NMS_TYPES)}. Received: "
                f"{nms_type!r}."
            )
        for name, value in (
            ("pre_nms_top_k", pre_nms_top_k),
            ("max_detections", max_detections),
            ("num_classes", num_classes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1. Received: {value}.")
        if not 0.0 <= score_threshold < 1.0 or not 0.0 < iou_threshold <= 1.0:
            raise ValueError(
                "Detection needs 0 <= score_threshold < 1 and 0 < iou_threshold "
                f"<= 1. Received: score_threshold={score_threshold}, "
                f"iou_threshold={iou_threshold}."
            )
        self.anchors = np.asarray(anchors, np.float32)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.num_classes = num_classes
        self.pre_nms_top_k = pre_nms_top_k
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.nms_type = nms_type
        self.box_coder_weights = box_ops.check_weights(box_coder_weights)

    def __call__(self, cls_outputs, box_outputs) -> dict[str, tf.Tensor]:
        cls_outputs = tf.cast(cls_outputs, tf.float32)
        box_outputs = tf.cast(box_outputs, tf.float32)
        if cls_outputs.shape[0] == 1:  # The TFLite signature: builtin NMS only.
            result = self._one(cls_outputs[0], box_outputs[0])
            return {key: value[tf.newaxis] for key, value in result.items()}
        return self._batched(cls_outputs, box_outputs)

    def _candidates(self, logits, deltas):
        """`(boxes, normalized boxes, scores, classes)` of the `pre_nms_top_k`
        best (anchor, class) pairs, sorted by score: `[K, ...]` for one image
        (`logits` `[N, C]`), `[B, K, ...]` for a batch."""
        height, width = self.image_size
        num_anchors = self.anchors.shape[0]
        batched = len(logits.shape) == 3
        boxes = box_ops.decode_boxes(deltas, self.anchors, self.box_coder_weights)
        boxes = box_ops.clip_boxes(boxes, height, width)
        flat = [-1, num_anchors * self.num_classes] if batched else [-1]
        scores = tf.reshape(tf.sigmoid(logits), flat)
        top_k = min(self.pre_nms_top_k, num_anchors * self.num_classes)
        top_scores, top_index = tf.math.top_k(scores, top_k, sorted=True)
        anchor_index = top_index // self.num_classes
        classes = top_index - anchor_index * self.num_classes
        candidates = tf.gather(boxes, anchor_index, batch_dims=int(batched))
        scale = tf.constant([height, width, height, width], tf.float32)
        return candidates, candidates / scale, top_scores, classes

    def _batched(self, logits, deltas) -> dict[str, tf.Tensor]:
        """A batch of any size without a loop: `combined_non_max_suppression`.

        Per class it keeps the same detections as `_one` (a suppression per
        class over that class's candidates, then the `max_detections` best);
        class-agnostic suppression is one class of every candidate, whose
        own class is found again by its (box, score).
        """
        candidates, normalized, top_scores, classes = self._candidates(logits, deltas)
        if self.nms_type == "class_agnostic":
            scores = top_scores[..., tf.newaxis]
        else:  # Each candidate scores only in its own class.
            scores = tf.one_hot(classes, self.num_classes) * top_scores[..., None]
        boxes, kept_scores, kept_classes, count = tf.image.combined_non_max_suppression(
            normalized[:, :, tf.newaxis, :],
            scores,
            max_output_size_per_class=self.max_detections,
            max_total_size=self.max_detections,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            pad_per_class=False,
            clip_boxes=False,
        )
        if self.nms_type == "class_agnostic":
            same = tf.reduce_all(
                tf.equal(boxes[:, :, None, :], normalized[:, None, :, :]), axis=-1
            ) & tf.equal(kept_scores[:, :, None], top_scores[:, None, :])
            kept_classes = tf.gather(
                classes, tf.argmax(tf.cast(same, tf.int32), axis=-1), batch_dims=1
            )
        valid = tf.range(self.max_detections)[tf.newaxis, :] < count[:, tf.newaxis]
        height, width = self.image_size
        scale = tf.constant([height, width, height, width], tf.float32)
        return {
            "detection_boxes": tf.where(valid[..., None], boxes * scale, 0.0),
            "detection_scores": tf.where(valid, kept_scores, 0.0),
            "detection_classes": tf.where(valid, tf.cast(kept_classes, tf.int32), -1),
            "num_detections": tf.cast(count, tf.int32),
        }

    def _one(self, logits, deltas) -> dict[str, tf.Tensor]:
        candidates, normalized, top_scores, classes = self._candidates(logits, deltas)
        if self.nms_type == "class_agnostic":
            chosen, chosen_scores = self._suppress(normalized, top_scores)
        else:
            chosen_per_class, scores_per_class = [], []
            for c in range(self.num_classes):
                class_scores = tf.where(tf.equal(classes, c), top_scores, 0.0)
                index, kept = self._suppress(normalized, class_scores)
                chosen_per_class.append(index)
                scores_per_class.append(kept)
            all_scores = tf.concat(scores_per_class, axis=0)
            all_index = tf.concat(chosen_per_class, axis=0)
            chosen_scores, best = tf.math.top_k(all_scores, self.max_detections)
            chosen = tf.gather(all_index, best)
        valid = chosen_scores > 0.0
        count = tf.reduce_sum(tf.cast(valid, tf.int32))
        return {
            "detection_boxes": tf.where(
                valid[:, None], tf.gather(candidates, chosen), 0.0
            ),
            "detection_scores": tf.where(valid, chosen_scores, 0.0),
            "detection_classes": tf.where(valid, tf.gather(classes, chosen), -1),
            "num_detections": count,
        }

    def _suppress(self, boxes, scores):
        """`(indices, scores)` `[max_detections]` kept; padding rows score -1."""
        index, count = tf.image.non_max_suppression_padded(
            boxes,
            scores,
            self.max_detections,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            pad_to_max_output_size=True,
        )
        valid = tf.range(self.max_detections) < count
        return index, tf.where(valid, tf.gather(scores, index), -1.0)
