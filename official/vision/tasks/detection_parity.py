"""Parity of an exported detector with its Keras model, on final detections.

`RetinaNetTask`'s parity hooks return these (the machinery is in
`official/core/parity_measures.py` and `serving/parity.py`):

- `matched_fraction`: of the Keras model's detections scoring at least
  `PARITY_SCORE_THRESHOLD`, the fraction that the artifact also returns:
  a detection of the same class whose box has IoU >= `PARITY_IOU` with it
  (any score, each artifact detection used once); 1.0 when Keras returns
  none above the threshold;
- `matched_fraction_iou50`: the same at IoU >= 0.5 (`LOOSE_IOU`): whether
  the artifact finds the same objects, when quantization moves the boxes;
- `map`, `reference_map` and `map_drop`: COCO AP (pycocotools) of the
  artifact's and of Keras' detections against the labels of the parity
  examples, and their difference.

Tolerances (`DETECTION_TOLERANCES`), by artifact kind. Float artifacts
differ from Keras by reordered float sums: a box may move by a fraction of a
pixel and a near-tie in suppression may flip. Quantized files move scores
and box offsets by a few percent, which moves boxes (the IoU of 0.9 asks
for about 2.5 % of the box side) and reorders near-threshold detections. Measured on `retinanet_shapes` (64
px images, 64 examples): int8 keeps 34 % of the boxes within IoU 0.9 and
100 % within 0.5, and its AP (over IoU 0.50:0.95) is 0.05-0.09 lower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from official.core.parity_measures import Bounds, tolerance_of_kind
from official.vision.evaluation import coco_evaluator

PARITY_SCORE_THRESHOLD = 0.3
PARITY_IOU = 0.9
LOOSE_IOU = 0.5

DETECTION_TOLERANCES: dict[str, Bounds] = {
    "saved_model": Bounds({"map_drop": 1e-3}, {"matched_fraction": 0.99}),
    "none": Bounds({"map_drop": 0.01}, {"matched_fraction": 0.98}),
    "onnx": Bounds({"map_drop": 0.01}, {"matched_fraction": 0.98}),
    "float16": Bounds({"map_drop": 0.02}, {"matched_fraction": 0.95}),
    "dynamic": Bounds({"map_drop": 0.05}, {"matched_fraction": 0.85}),
    "int8": Bounds(
        {"map_drop": 0.15}, {"matched_fraction": 0.2, "matched_fraction_iou50": 0.9}
    ),
}


def detection_tolerance(kind: str) -> Bounds:
    """`DETECTION_TOLERANCES[kind]`, or a KeyError naming the known kinds."""
    return tolerance_of_kind(DETECTION_TOLERANCES, kind, "detection")


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    height = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    width = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.maximum(height, 0) * np.maximum(width, 0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def matched_fraction(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    score_threshold: float = PARITY_SCORE_THRESHOLD,
    iou_threshold: float = PARITY_IOU,
) -> float:
    """The fraction of reference detections above `score_threshold` that
    `candidate` matches (same class, IoU >= `iou_threshold`).

    Both are batched detector outputs (`detection_boxes` `[N, K, 4]`,
    `detection_scores`, `detection_classes`, `num_detections`).

    Example:
    ```python
    import numpy as np
    from official.vision.tasks.detection_parity import matched_fraction

    out = {"detection_boxes": np.array([[[0, 0, 0.5, 0.5], [0, 0, 0, 0]]]),
           "detection_scores": np.array([[0.9, 0.0]]),
           "detection_classes": np.array([[1, -1]]),
           "num_detections": np.array([1])}
    assert matched_fraction(out, out) == 1.0
    ```
    """
    wanted = found = 0
    for i in range(len(reference["num_detections"])):
        ref_n = int(reference["num_detections"][i])
        cand_n = int(candidate["num_detections"][i])
        cand_boxes = np.asarray(candidate["detection_boxes"][i][:cand_n], np.float64)
        cand_classes = np.asarray(candidate["detection_classes"][i][:cand_n])
        used = np.zeros(cand_n, bool)
        for j in range(ref_n):
            if reference["detection_scores"][i][j] < score_threshold:
                continue
            wanted += 1
            box = np.asarray(reference["detection_boxes"][i][j], np.float64)
            cls = reference["detection_classes"][i][j]
            if not cand_n:
                continue
            ious = _iou(box, cand_boxes)
            ious[(cand_classes != cls) | used] = -1.0
            best = int(np.argmax(ious))
            if ious[best] >= iou_threshold:
                used[best] = True
                found += 1
    return found / wanted if wanted else 1.0


def groundtruths_from_labels(labels: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Parity labels `[N, M, 6]` (ymin, xmin, ymax, xmax pixels, class (-1:
    padding), is_crowd) -> `coco_metrics` ground truth per image."""
    truths = []
    for rows in np.asarray(labels):
        rows = rows[rows[:, 4] >= 0]
        boxes = rows[:, :4]
        truths.append(
            {
                "boxes": boxes,
                "classes": rows[:, 4].astype(np.int64),
                "is_crowd": rows[:, 5].astype(np.int64),
                "area": (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
            }
        )
    return truths


def detections_in_pixels(
    outputs: dict[str, np.ndarray], image_size: Sequence[int]
) -> list[dict[str, np.ndarray]]:
    """Batched outputs with normalized boxes -> per-image pixel detections."""
    scale = np.array([*image_size, *image_size], np.float64)
    found = []
    for i, n in enumerate(np.asarray(outputs["num_detections"]).astype(int)):
        found.append(
            {
                "boxes": np.asarray(outputs["detection_boxes"][i][:n], np.float64)
                * scale,
                "scores": np.asarray(outputs["detection_scores"][i][:n]),
                "classes": np.asarray(outputs["detection_classes"][i][:n]).astype(
                    np.int64
                ),
            }
        )
    return found


def mean_ap(
    outputs: dict[str, np.ndarray],
    labels: np.ndarray,
    image_size: Sequence[int],
    num_classes: int,
) -> float:
    """COCO AP of batched outputs (normalized boxes) against parity labels."""
    metrics, _ = coco_evaluator.coco_metrics(
        groundtruths_from_labels(labels),
        detections_in_pixels(outputs, image_size),
        range(num_classes),
    )
    return metrics["AP"]


def detection_measures(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    labels: np.ndarray,
    image_size: Sequence[int],
    num_classes: int,
) -> dict[str, float]:
    """`matched_fraction`, `map`, `reference_map` and `map_drop` of one artifact."""
    reference_map = mean_ap(reference, labels, image_size, num_classes)
    candidate_map = mean_ap(candidate, labels, image_size, num_classes)
    return {
        "matched_fraction": matched_fraction(reference, candidate),
        "matched_fraction_iou50": matched_fraction(
            reference, candidate, iou_threshold=LOOSE_IOU
        ),
        "map": candidate_map,
        "reference_map": reference_map,
        "map_drop": reference_map - candidate_map,
    }
