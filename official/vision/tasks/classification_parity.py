"""Parity of an exported classifier with its Keras model: measures, tolerances.

`ImageClassificationTask`'s parity hooks (`Task.parity_measures`,
`Task.parity_reference_measures`, `Task.parity_tolerance`; the machinery is
in `official/core/parity_measures.py` and `serving/parity.py`) return these:
`classification_measures` compares an artifact's `probabilities` (and
`logits`, `classes` when present) with the Keras reference's and with the
labels; `classification_tolerance(kind)` is what each artifact kind must meet.

Tolerances (`CLASSIFICATION_TOLERANCES`), fixed here by artifact kind; tests
do not loosen them:

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
from official.vision.tasks import classification_parity

reference = {"probabilities": np.array([[0.9, 0.1], [0.2, 0.8]])}
candidate = {"probabilities": np.array([[0.85, 0.15], [0.3, 0.7]])}
measures = classification_parity.classification_measures(
    reference, candidate, np.array([0, 1])
)
assert measures["top1_agreement"] == 1.0
tolerance = classification_parity.classification_tolerance("float16")
assert tolerance.check(measures) == [
    "max abs diff of probabilities 0.1 > 0.01", "no 'logits' output to compare"
]
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from official.core.parity_measures import tolerance_of_kind


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
    """`CLASSIFICATION_TOLERANCES[kind]`, or a KeyError naming the known kinds."""
    return tolerance_of_kind(CLASSIFICATION_TOLERANCES, kind, "classification")


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
            f"A task with other outputs defines its own Task.parity_measures."
        )
