"""Parity of an exported segmentation model with its Keras model.

`SemanticSegmentationTask`'s parity hooks return these (the machinery is in
`official/core/parity_measures.py` and `serving/parity.py`): the fraction of
pixels whose class matches the Keras model's (`pixel_agreement`) and the
mIoU lost against the labels (`miou_drop`).

Tolerances (`SEGMENTATION_TOLERANCES`), fixed here by artifact kind. Float
artifacts differ only by reordered float sums (pixels on a near-tie between
two classes may flip); quantized ones move logits by a few percent, which
flips boundary pixels.
"""

from __future__ import annotations

import numpy as np

from official.core.parity_measures import Bounds, tolerance_of_kind

SEGMENTATION_TOLERANCES: dict[str, Bounds] = {
    "saved_model": Bounds({"miou_drop": 1e-3}, {"pixel_agreement": 0.999}),
    "none": Bounds({"miou_drop": 5e-3}, {"pixel_agreement": 0.995}),
    "onnx": Bounds({"miou_drop": 5e-3}, {"pixel_agreement": 0.995}),
    "float16": Bounds({"miou_drop": 0.01}, {"pixel_agreement": 0.99}),
    "dynamic": Bounds({"miou_drop": 0.03}, {"pixel_agreement": 0.97}),
    "int8": Bounds({"miou_drop": 0.05}, {"pixel_agreement": 0.93}),
}


def segmentation_tolerance(kind: str) -> Bounds:
    """`SEGMENTATION_TOLERANCES[kind]`, or a KeyError naming the known kinds."""
    return tolerance_of_kind(SEGMENTATION_TOLERANCES, kind, "segmentation")


def mean_iou(
    predicted: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    ignore_label: int | None = None,
) -> float:
    """mIoU over the classes present in `predicted` or `labels`.

    Args:
        predicted: integer class map, any shape.
        labels: integer class map of the same shape.
        num_classes: classes are `0..num_classes-1`; other label values must
            be `ignore_label`.
        ignore_label: pixels with this label are left out.
    """
    predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if predicted.shape != labels.shape:
        raise ValueError(
            f"predicted and labels differ in size: {predicted.size} vs {labels.size}."
        )
    keep = labels != ignore_label if ignore_label is not None else slice(None)
    predicted, labels = predicted[keep], labels[keep]
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(
            f"labels hold {sorted(set(bad.tolist()))[:5]}, outside 0..{num_classes - 1} "
            f"and not ignore_label={ignore_label}."
        )
    predicted = np.clip(predicted, 0, num_classes - 1)
    confusion = np.bincount(
        labels * num_classes + predicted, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    if not present.any():
        return 0.0
    return float(np.mean(intersection[present] / union[present]))


def segmentation_measures(
    reference_classes: np.ndarray,
    candidate_classes: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    ignore_label: int | None = None,
) -> dict[str, float]:
    """Pixel agreement with the reference and the mIoU difference.

    `SemanticSegmentationTask.parity_measures` passes the `classes` outputs
    of both.

    Args:
        reference_classes: `[N, H, W]` class map of the Keras reference.
        candidate_classes: `[N, H, W]` class map of the artifact.
        labels: `[N, H, W]` ground-truth class map.
        num_classes: number of classes.
        ignore_label: label value left out of the mIoU.

    Returns:
        `pixel_agreement` (fraction of pixels with the same class),
        `miou`, `reference_miou` and `miou_drop` (reference minus artifact).

    Example:
    ```python
    import numpy as np
    from official.vision.tasks import segmentation_parity

    labels = np.array([[[0, 1], [1, 1]]])
    m = segmentation_parity.segmentation_measures(labels, labels, labels, num_classes=2)
    assert m["pixel_agreement"] == 1.0 and m["miou_drop"] == 0.0
    ```
    """
    reference_classes = np.asarray(reference_classes)
    candidate_classes = np.asarray(candidate_classes)
    if reference_classes.shape != candidate_classes.shape:
        raise ValueError(
            f"Class maps differ in shape: reference {reference_classes.shape}, "
            f"artifact {candidate_classes.shape}."
        )
    reference_miou = mean_iou(reference_classes, labels, num_classes, ignore_label)
    miou = mean_iou(candidate_classes, labels, num_classes, ignore_label)
    return {
        "pixel_agreement": float(np.mean(reference_classes == candidate_classes)),
        "miou": miou,
        "reference_miou": reference_miou,
        "miou_drop": reference_miou - miou,
    }
