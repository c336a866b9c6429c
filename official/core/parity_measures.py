"""What "an exported artifact agrees with the Keras model" means, per task.

The exporter (`serving/parity.py`) runs the same validation examples through
the Keras model (the reference) and through every artifact, then asks the task
three questions through its parity hooks (`Task.parity_measures`,
`Task.parity_reference_measures`, `Task.parity_tolerance`):

1. which numbers describe an artifact's outputs against the reference's (and
   against the labels): a flat `{measure_name: float}` dict;
2. which numbers describe the reference alone (its accuracy, for the report);
3. what each artifact kind must meet: a tolerance object, a frozen dataclass
   with a `check(measures) -> list[str]` method returning one message per
   violated bound (empty: it passes). `dataclasses.asdict(tolerance)` goes
   into `parity.json`.

Artifact kinds (`ARTIFACT_KINDS`): `saved_model`, `none` (float32 .tflite),
`float16`, `dynamic`, `int8` (full integer .tflite, whatever its input/output
types) and `onnx`.

This module holds the classification defaults of those hooks, and two helpers
for other tasks: `Bounds`, a tolerance made of named upper and lower bounds,
and `segmentation_measures` (pixel agreement and mIoU difference).

Classification tolerances (`CLASSIFICATION_TOLERANCES`), fixed here by
artifact kind; tests do not loosen them:

- `saved_model`: the same TF kernels, only graph rewrites: probabilities 1e-4,
  relative logits 1e-4, top-1 agreement >= 0.98.
- `none` (float32 .tflite): folded batch norm and XNNPACK kernels reorder
  float sums: probabilities 1e-4, relative logits 1e-3, agreement >= 0.98.
- `onnx`: float32 kernels of onnxruntime, sums reordered as for `none`:
  probabilities 1e-4, relative logits 1e-3, agreement >= 0.98.
- `float16`: weights rounded to 11 bits: probabilities 1e-2, relative logits
  1e-2, agreement >= 0.95.
- `dynamic`: int8 weights, activations quantized per batch: probabilities
  0.15, agreement >= 0.95; logits are reported, not checked. (Measured on
  resnet_digits: 0.064 on one near-tie example of 256, everything else far
  below; a broken conversion moves probabilities by ~0.5 or more.)
- `int8`: everything quantized: top-1 agreement >= 0.90 and top-1 accuracy at
  most 0.05 below Keras'; probabilities and logits are reported only
  (resnet_digits: max 0.10, agreement 1.0 on 256 examples).

Max differences are dominated by near-tie examples, where softmax is steepest;
`mean_abs_diff_probabilities` is reported beside them.

Example:
```python
import numpy as np
from official.core import parity_measures

reference = {"probabilities": np.array([[0.9, 0.1], [0.2, 0.8]])}
candidate = {"probabilities": np.array([[0.85, 0.15], [0.3, 0.7]])}
measures = parity_measures.classification_measures(
    reference, candidate, np.array([0, 1])
)
assert measures["top1_agreement"] == 1.0
tolerance = parity_measures.classification_tolerance("float16")
assert tolerance.check(measures) == [
    "max abs diff of probabilities 0.1 > 0.01", "no 'logits' output to compare"
]
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from official.base.suggest import did_you_mean

ARTIFACT_KINDS = ("saved_model", "none", "float16", "dynamic", "int8", "onnx")


class ParityTolerance(Protocol):
    """What a tolerance returned by `Task.parity_tolerance` provides.

    It is a (frozen) dataclass, so that `dataclasses.asdict` can write it to
    `parity.json`, with a `check` method.
    """

    def check(self, measures: Mapping[str, Any]) -> list[str]:
        """One message per bound that `measures` violates; empty: it passes."""


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A tolerance made of upper and lower bounds on named measures.

    Args:
        maximum: `{measure: bound}`; the measure must be <= bound.
        minimum: `{measure: bound}`; the measure must be >= bound.

    A measure that is missing (or NaN) violates its bound.

    Example:
    ```python
    from official.core.parity_measures import Bounds

    tolerance = Bounds(maximum={"miou_drop": 0.02}, minimum={"pixel_agreement": 0.99})
    assert tolerance.check({"miou_drop": 0.0, "pixel_agreement": 0.995}) == []
    assert tolerance.check({"miou_drop": 0.1, "pixel_agreement": 1.0}) == [
        "miou_drop 0.1 > 0.02"
    ]
    ```
    """

    maximum: dict[str, float] = dataclasses.field(default_factory=dict)
    minimum: dict[str, float] = dataclasses.field(default_factory=dict)

    def check(self, measures: Mapping[str, Any]) -> list[str]:
        """One message per violated bound."""
        failures = []
        for name, bound in self.maximum.items():
            value = measures.get(name)
            if value is None:
                failures.append(f"no measure {name!r} to compare")
            elif not value <= bound:
                failures.append(f"{name} {value:.3g} > {bound:g}")
        for name, bound in self.minimum.items():
            value = measures.get(name)
            if value is None:
                failures.append(f"no measure {name!r} to compare")
            elif not value >= bound:
                failures.append(f"{name} {value:.3g} < {bound:g}")
        return failures


# ---- classification --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClassificationTolerance:
    """What a classifier's artifact must meet against the Keras reference.

    Args:
        max_abs_diff_probabilities: float or None (not checked).
        max_rel_diff_logits: float or None (not checked); the max abs logit
            difference divided by `max(1, max |reference logit|)`.
        min_top1_agreement: fraction of examples whose top-1 class matches
            Keras'.
        max_accuracy_drop: float or None; Keras' top-1 accuracy minus the
            artifact's, against the labels.
    """

    max_abs_diff_probabilities: float | None = None
    max_rel_diff_logits: float | None = None
    min_top1_agreement: float = 0.0
    max_accuracy_drop: float | None = None

    def check(self, measures: Mapping[str, Any]) -> list[str]:
        """One message per violated bound (see `classification_measures`)."""
        failures = []
        diff_probs = measures["max_abs_diff_probabilities"]
        if self.max_abs_diff_probabilities is not None and not (
            diff_probs <= self.max_abs_diff_probabilities
        ):
            failures.append(
                f"max abs diff of probabilities {diff_probs:.3g} > "
                f"{self.max_abs_diff_probabilities:g}"
            )
        if self.max_rel_diff_logits is not None:
            diff_logits = measures.get("max_rel_diff_logits")
            if diff_logits is None:
                failures.append("no 'logits' output to compare")
            elif not diff_logits <= self.max_rel_diff_logits:
                failures.append(
                    f"relative max diff of logits {diff_logits:.3g} > "
                    f"{self.max_rel_diff_logits:g}"
                )
        if not measures["top1_agreement"] >= self.min_top1_agreement:
            failures.append(
                f"top-1 agreement with Keras {measures['top1_agreement']:.3f} < "
                f"{self.min_top1_agreement:g}"
            )
        if self.max_accuracy_drop is not None and not (
            measures["accuracy_drop"] <= self.max_accuracy_drop
        ):
            failures.append(
                f"top-1 accuracy {measures['top1_accuracy']:.3f} is "
                f"{measures['accuracy_drop']:.3f} below Keras' "
                f"{measures['reference_top1_accuracy']:.3f} "
                f"(allowed {self.max_accuracy_drop:g})"
            )
        return failures


CLASSIFICATION_TOLERANCES: dict[str, ClassificationTolerance] = {
    "saved_model": ClassificationTolerance(1e-4, 1e-4, 0.98),
    "none": ClassificationTolerance(1e-4, 1e-3, 0.98),
    "onnx": ClassificationTolerance(1e-4, 1e-3, 0.98),
    "float16": ClassificationTolerance(1e-2, 1e-2, 0.95),
    "dynamic": ClassificationTolerance(0.15, None, 0.95),
    "int8": ClassificationTolerance(None, None, 0.90, 0.05),
}


def classification_tolerance(kind: str) -> ClassificationTolerance:
    """The classification tolerance of one artifact kind (see the module doc)."""
    if kind not in CLASSIFICATION_TOLERANCES:
        valid = sorted(CLASSIFICATION_TOLERANCES)
        hint = did_you_mean(kind, valid)
        raise KeyError(
            f"No parity tolerance for artifact kind {kind!r}.{hint} Known: "
            f"{', '.join(valid)}."
        )
    return CLASSIFICATION_TOLERANCES[kind]


def top1(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """`[N]` classes: the `classes` output, else the argmax of probabilities."""
    if "classes" in outputs:
        return np.asarray(outputs["classes"]).reshape(-1).astype(np.int64)
    return np.argmax(outputs["probabilities"], axis=-1)


def classification_reference_measures(
    reference: Mapping[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """`{"top1_accuracy"}` of the Keras reference against `labels`."""
    _require_probabilities("reference", reference)
    return {"top1_accuracy": float(np.mean(top1(reference) == np.reshape(labels, -1)))}


def classification_measures(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    labels: np.ndarray,
) -> dict[str, float]:
    """Measures a classifier artifact's outputs against the Keras reference.

    Args:
        reference: the Keras outputs; `probabilities` `[N, C]` required,
            `logits` and `classes` used when present.
        candidate: the artifact's outputs, same keys.
        labels: `[N]` integer labels.

    Returns:
        `max_abs_diff_probabilities`, `mean_abs_diff_probabilities`,
        `max_rel_diff_logits` (when both have logits: max abs difference
        divided by `max(1, max |reference logit|)`), `top1_agreement`,
        `top1_accuracy`, `reference_top1_accuracy`, `accuracy_drop`.
    """
    _require_probabilities("reference", reference)
    _require_probabilities("artifact", candidate)
    labels = np.asarray(labels).reshape(-1)
    ref_top1, cand_top1 = top1(reference), top1(candidate)
    abs_diff = np.abs(
        np.asarray(candidate["probabilities"], np.float64)
        - np.asarray(reference["probabilities"], np.float64)
    )
    measures = {
        "max_abs_diff_probabilities": float(np.max(abs_diff)),
        "mean_abs_diff_probabilities": float(np.mean(abs_diff)),
    }
    if "logits" in reference and "logits" in candidate:
        ref_logits = np.asarray(reference["logits"], np.float64)
        scale = max(1.0, float(np.max(np.abs(ref_logits))))
        diff = np.abs(np.asarray(candidate["logits"], np.float64) - ref_logits)
        measures["max_rel_diff_logits"] = float(np.max(diff)) / scale
    reference_accuracy = float(np.mean(ref_top1 == labels))
    accuracy = float(np.mean(cand_top1 == labels))
    measures.update(
        top1_agreement=float(np.mean(cand_top1 == ref_top1)),
        top1_accuracy=accuracy,
        reference_top1_accuracy=reference_accuracy,
        accuracy_drop=reference_accuracy - accuracy,
    )
    return measures


def _require_probabilities(name: str, outputs: Mapping[str, np.ndarray]) -> None:
    if "probabilities" not in outputs:
        raise ValueError(
            f"The {name} outputs have no 'probabilities' (outputs: "
            f"{sorted(outputs)}); the classification parity measures need them. "
            f"A task with other outputs overrides Task.parity_measures."
        )


# ---- dense prediction (segmentation) -------------------------------------------------


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

    A segmentation task's `parity_measures` picks its class-map output (or the
    argmax of its logits) from both outputs dicts and calls this.

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
    from official.core import parity_measures

    labels = np.array([[[0, 1], [1, 1]]])
    m = parity_measures.segmentation_measures(labels, labels, labels, num_classes=2)
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
