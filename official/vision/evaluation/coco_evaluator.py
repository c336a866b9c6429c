"""COCO box mAP through pycocotools, accumulated over a whole evaluation.

`coco_metrics(groundtruths, detections, class_ids)` runs pycocotools'
`COCOeval` ("bbox") on per-image ground truth and detections (pixels of the
original image) and returns its twelve numbers (`METRIC_NAMES`: AP at IoU
0.50:0.95, 0.50 and 0.75, AP for small / medium / large objects, AR with 1,
10 and 100 detections per image, AR small / medium / large) and the AP of
each class. pycocotools reports -1 where nothing can be measured (no ground
truth of that kind). It is the `coco` extra (`pip install garden[coco]`);
without it the error names the extra.

`COCOMetric` is a Keras metric that collects, batch by batch, the ground
truth of the detection labels and the detector's outputs (numpy, outside
the graph) and evaluates them once per `result()` after new data. The
trainer updates metrics with each replica's local batch in turn, so with
several replicas on one host every image is collected once and the numbers
are those of the whole evaluation set. Under `multi_worker_mirrored` each
worker collects its own shard; after the last step the trainer calls
`merge_across_workers`, which gathers every worker's images (ground truth
and detections packed into padded float64 rows, two collectives per array)
so that every worker, the chief included, evaluates the whole set.
`COCOView` reads one number of a `COCOMetric` (list the source first).

Example:
```python
import numpy as np
from official.vision.evaluation import coco_evaluator

truth = [{"boxes": np.array([[10.0, 10.0, 50.0, 60.0]]), "classes": np.array([1]),
          "is_crowd": np.array([0]), "area": np.array([2000.0])}]
perfect = [{"boxes": truth[0]["boxes"], "scores": np.array([0.9]),
            "classes": np.array([1])}]
metrics, per_class = coco_evaluator.coco_metrics(truth, perfect, class_ids=[1])
assert abs(metrics["AP"] - 1.0) < 1e-9 and abs(per_class[1] - 1.0) < 1e-9
```
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

METRIC_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "ARmax1",
    "ARmax10",
    "ARmax100",
    "ARs",
    "ARm",
    "ARl",
)


def _pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        raise ImportError(
            "COCO mAP needs pycocotools, the `coco` extra: pip install "
            "'garden[coco]' (or pip install pycocotools)."
        ) from e
    return COCO, COCOeval


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack(
        [
            boxes[:, 1],
            boxes[:, 0],
            boxes[:, 3] - boxes[:, 1],
            boxes[:, 2] - boxes[:, 0],
        ],
        axis=1,
    )


def coco_metrics(
    groundtruths: Sequence[dict[str, np.ndarray]],
    detections: Sequence[dict[str, np.ndarray]],
    class_ids: Sequence[int],
) -> tuple[dict[str, float], dict[int, float]]:
    """pycocotools' box metrics of `detections` against `groundtruths`.

    Args:
        groundtruths: one dict per image: `boxes` `[n, 4]` (ymin, xmin, ymax,
            xmax pixels), `classes` `[n]`, `is_crowd` `[n]`, `area` `[n]`.
        detections: one dict per image (same order): `boxes` `[k, 4]`,
            `scores` `[k]`, `classes` `[k]`.
        class_ids: the category ids evaluated.

    Returns:
        `({name: value} for METRIC_NAMES, {class_id: AP})`; a class without
        ground truth has AP -1 (pycocotools' "nothing to measure").
    """
    if len(groundtruths) != len(detections):
        raise ValueError(
            f"coco_metrics needs one detection entry per image: "
            f"{len(groundtruths)} ground-truth images, {len(detections)} detections."
        )
    COCO, COCOeval = _pycocotools()
    images, annotations, results = [], [], []
    for image_id, (truth, found) in enumerate(zip(groundtruths, detections), start=1):
        images.append({"id": image_id})
        for box, cls, crowd, area in zip(
            _xywh(truth["boxes"]), truth["classes"], truth["is_crowd"], truth["area"]
        ):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls),
                    "bbox": box.tolist(),
                    "area": float(area),
                    "iscrowd": int(crowd),
                }
            )
        for box, score, cls in zip(
            _xywh(found["boxes"]), found["scores"], found["classes"]
        ):
            results.append([image_id, *box.tolist(), float(score), int(cls)])
    ground = COCO()
    ground.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": int(c)} for c in class_ids],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground.createIndex()
        if not results or not annotations:
            # Nothing detected: AP 0 where there is ground truth, else -1.
            present = {a["category_id"] for a in annotations if not a["iscrowd"]}
            metrics = dict.fromkeys(METRIC_NAMES, 0.0 if present else -1.0)
            return metrics, {int(c): 0.0 if c in present else -1.0 for c in class_ids}
        found = ground.loadRes(np.asarray(results, np.float64))
        evaluator = COCOeval(ground, found, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics = {name: float(v) for name, v in zip(METRIC_NAMES, evaluator.stats)}
    precision = evaluator.eval["precision"]  # [IoU, recall, class, area, max dets]
    per_class = {}
    for k, class_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[int(class_id)] = float(values.mean()) if values.size else -1.0
    return metrics, per_class


@keras.saving.register_keras_serializable(package="official")
class COCOMetric(keras.metrics.Metric):
    """COCO box AP (and every other COCO number) of a whole evaluation.

    Args:
        num_classes: int; class ids `0..num_classes-1` are evaluated.
        name: str. Default "AP".
        **kwargs: base metric arguments.

    Call arguments (`update_state`):
        labels: the detection labels (`groundtruth_boxes`,
            `groundtruth_classes` (-1: padding), `groundtruth_is_crowd`,
            `groundtruth_area`, `image_info`).
        detections: `detection_boxes` (pixels of the model input),
            `detection_scores`, `detection_classes`, `num_detections`.

    Returns (`result`):
        float64 scalar, COCO AP at IoU 0.50:0.95.
    """

    def __init__(self, num_classes, name="AP", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self._groundtruths: list[dict[str, np.ndarray]] = []
        self._detections: list[dict[str, np.ndarray]] = []
        self._cache: tuple[dict, dict] | None = None

    def _add(
        self, boxes, classes, crowd, area, info, det_boxes, scores, det_classes, num
    ):
        for i in range(len(boxes)):
            keep = classes[i] >= 0
            height, width, scale_y, scale_x = info[i]
            self._groundtruths.append(
                {
                    "boxes": boxes[i][keep],
                    "classes": classes[i][keep],
                    "is_crowd": crowd[i][keep],
                    "area": area[i][keep],
                }
            )
            n = int(num[i])
            scale = np.array([scale_y, scale_x, scale_y, scale_x], np.float32)
            found = det_boxes[i][:n] / scale
            found = np.clip(found, 0.0, [height, width, height, width])
            self._detections.append(
                {"boxes": found, "scores": scores[i][:n], "classes": det_classes[i][:n]}
            )
        self._cache = None
        return np.int64(len(boxes))

    def update_state(self, labels, detections, sample_weight=None):
        del sample_weight
        tf.numpy_function(
            self._add,
            [
                labels["groundtruth_boxes"],
                labels["groundtruth_classes"],
                labels["groundtruth_is_crowd"],
                labels["groundtruth_area"],
                labels["image_info"],
                detections["detection_boxes"],
                detections["detection_scores"],
                detections["detection_classes"],
                detections["num_detections"],
            ],
            tf.int64,
            stateful=True,
        )

    def merge_across_workers(self, gather) -> None:
        """Replaces this worker's images by those of every worker.

        Args:
            gather: `gather(array) -> array`, every worker's `array`
                concatenated along axis 0 in worker order; called by every
                worker at once (`official.core.distribute.
                gather_across_workers`).
        """
        counts = np.array(
            [
                [len(t["classes"]), len(d["classes"])]
                for t, d in zip(self._groundtruths, self._detections)
            ],
            np.int64,
        ).reshape(-1, 2)
        truth = np.concatenate(
            [np.zeros((0, 7))]
            + [
                np.column_stack(
                    [t["boxes"].reshape(-1, 4), t["classes"], t["is_crowd"], t["area"]]
                )
                for t in self._groundtruths
            ]
        )
        found = np.concatenate(
            [np.zeros((0, 6))]
            + [
                np.column_stack([d["boxes"].reshape(-1, 4), d["scores"], d["classes"]])
                for d in self._detections
            ]
        )
        counts = gather(counts)
        truth = gather(truth.astype(np.float64))
        found = gather(found.astype(np.float64))
        ends = np.cumsum(counts, axis=0)
        self._groundtruths, self._detections = [], []
        for (n_truth, n_found), (end_truth, end_found) in zip(counts, ends):
            t = truth[end_truth - n_truth : end_truth]
            d = found[end_found - n_found : end_found]
            self._groundtruths.append(
                {
                    "boxes": t[:, :4].astype(np.float32),
                    "classes": t[:, 4].astype(np.int64),
                    "is_crowd": t[:, 5].astype(np.int64),
                    "area": t[:, 6].astype(np.float32),
                }
            )
            self._detections.append(
                {
                    "boxes": d[:, :4].astype(np.float32),
                    "scores": d[:, 4].astype(np.float32),
                    "classes": d[:, 5].astype(np.int64),
                }
            )
        self._cache = None

    def evaluate(self) -> tuple[dict[str, float], dict[int, float]]:
        """`coco_metrics` of everything collected since the last reset (cached)."""
        if self._cache is None:
            self._cache = coco_metrics(
                self._groundtruths, self._detections, range(self.num_classes)
            )
        return self._cache

    @property
    def num_images(self) -> int:
        """Images collected since the last reset."""
        return len(self._groundtruths)

    def result(self):
        return tf.constant(self.evaluate()[0][self.name], tf.float64)

    def reset_state(self):
        self._groundtruths, self._detections, self._cache = [], [], None

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class COCOView(keras.metrics.Metric):
    """One number of a `COCOMetric`'s evaluation (no state of its own).

    Args:
        source: the `COCOMetric`.
        key: a name of `METRIC_NAMES`, or an int class id (its AP).
        name: str; defaults to `key`.
    """

    def __init__(self, source: COCOMetric, key: Any, name: str = "", **kwargs):
        super().__init__(name=name or str(key), **kwargs)
        object.__setattr__(self, "_source", source)
        self.key = key

    def update_state(self, *args, **kwargs):
        del args, kwargs  # The source metric collects.

    def reset_state(self):
        pass

    def result(self):
        metrics, per_class = self._source.evaluate()
        value = per_class[self.key] if isinstance(self.key, int) else metrics[self.key]
        return tf.constant(value, tf.float64)
