"""Parity of an exported text model with its Keras model: measures, tolerances.

`SentencePredictionTask`'s parity hooks return these. Classification
compares `probabilities` (and `logits`, `classes`) with the Keras reference
and the labels; regression compares the `outputs` scores.

Tolerances (`TEXT_CLASSIFICATION_TOLERANCES`, `TEXT_REGRESSION_TOLERANCES`),
fixed here by artifact kind; tests do not loosen them:

- `saved_model`: the same kernels: probabilities 1e-4, relative logits
  1e-4, top-1 agreement >= 0.98 (scores: 1e-4 relative).
- `none` (float32 .tflite) and `onnx`: sums reordered: probabilities 1e-4,
  relative logits 1e-3, agreement >= 0.98 (scores 1e-3).
- `float16`: 1e-2 / 1e-2 / 0.95 (scores 1e-2).
- `dynamic`: probabilities 0.15, agreement >= 0.95 (scores 0.1).
- `int8`: agreement >= 0.90 and accuracy at most 0.05 below Keras'
  (scores: Pearson correlation with Keras' >= 0.95), as image classifiers'
  int8 files. The encoder's attention masks with `masked_softmax`
  (`official/modeling/layers/masked_attention.py`), which keeps a -1e9
  fill out of the int8 range of the attention scores; with Keras' masked
  softmax a trained 64-wide demo-size classifier's int8 file agreed with
  Keras on 0.85 of the validation sentences (1.00 now).

Example:
```python
import numpy as np
from official.nlp.tasks import text_parity

reference = {"probabilities": np.array([[0.9, 0.1], [0.2, 0.8]])}
candidate = {"probabilities": np.array([[0.85, 0.15], [0.3, 0.7]])}
measures = text_parity.classification_measures(reference, candidate, np.array([0, 1]))
assert measures["top1_agreement"] == 1.0
assert text_parity.tolerance("int8", regression=False).check(measures) == []
```
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from official.core.parity_measures import Bounds, tolerance_of_kind


def _classification(prob, logits, agreement, accuracy_drop=None) -> Bounds:
    maximum = {}
    if prob is not None:
        maximum["max_abs_diff_probabilities"] = prob
    if logits is not None:
        maximum["max_rel_diff_logits"] = logits
    if accuracy_drop is not None:
        maximum["accuracy_drop"] = accuracy_drop
    return Bounds(maximum=maximum, minimum={"top1_agreement": agreement})


TEXT_CLASSIFICATION_TOLERANCES: dict[str, Bounds] = {
    "saved_model": _classification(1e-4, 1e-4, 0.98),
    "none": _classification(1e-4, 1e-3, 0.98),
    "onnx": _classification(1e-4, 1e-3, 0.98),
    "float16": _classification(1e-2, 1e-2, 0.95),
    "dynamic": _classification(0.15, None, 0.95),
    "int8": _classification(None, None, 0.90, 0.05),
}
TEXT_REGRESSION_TOLERANCES: dict[str, Bounds] = {
    "saved_model": Bounds(maximum={"max_rel_diff_outputs": 1e-4}),
    "none": Bounds(maximum={"max_rel_diff_outputs": 1e-3}),
    "onnx": Bounds(maximum={"max_rel_diff_outputs": 1e-3}),
    "float16": Bounds(maximum={"max_rel_diff_outputs": 1e-2}),
    "dynamic": Bounds(maximum={"max_rel_diff_outputs": 0.1}),
    "int8": Bounds(minimum={"pearson_with_reference": 0.95}),
}


def tolerance(kind: str, regression: bool) -> Bounds:
    """The tolerance of an artifact `kind`; a KeyError naming the known kinds."""
    if regression:
        return tolerance_of_kind(TEXT_REGRESSION_TOLERANCES, kind, "text regression")
    return tolerance_of_kind(
        TEXT_CLASSIFICATION_TOLERANCES, kind, "text classification"
    )


def _top1(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    if "classes" in outputs:
        return np.asarray(outputs["classes"]).reshape(-1).astype(np.int64)
    return np.argmax(outputs["probabilities"], axis=-1)


def _require(name: str, outputs: Mapping[str, np.ndarray], key: str) -> None:
    if key not in outputs:
        raise ValueError(
            f"The {name} outputs have no {key!r} (outputs: {sorted(outputs)}); "
            f"the text parity measures need it."
        )


def classification_reference_measures(
    reference: Mapping[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """`{"top1_accuracy"}` of the Keras reference."""
    _require("reference", reference, "probabilities")
    labels = np.asarray(labels).reshape(-1)
    return {"top1_accuracy": float(np.mean(_top1(reference) == labels))}


def classification_measures(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    labels: np.ndarray,
) -> dict[str, float]:
    """Probability and logit differences, top-1 agreement, accuracy drop."""
    _require("reference", reference, "probabilities")
    _require("artifact", candidate, "probabilities")
    labels = np.asarray(labels).reshape(-1)
    diff = np.abs(
        np.asarray(candidate["probabilities"], np.float64)
        - np.asarray(reference["probabilities"], np.float64)
    )
    measures = {
        "max_abs_diff_probabilities": float(np.max(diff)),
        "mean_abs_diff_probabilities": float(np.mean(diff)),
    }
    if "logits" in reference and "logits" in candidate:
        ref = np.asarray(reference["logits"], np.float64)
        scale = max(1.0, float(np.max(np.abs(ref))))
        delta = np.abs(np.asarray(candidate["logits"], np.float64) - ref)
        measures["max_rel_diff_logits"] = float(np.max(delta)) / scale
    ref_top1, cand_top1 = _top1(reference), _top1(candidate)
    reference_accuracy = float(np.mean(ref_top1 == labels))
    accuracy = float(np.mean(cand_top1 == labels))
    measures.update(
        top1_agreement=float(np.mean(ref_top1 == cand_top1)),
        top1_accuracy=accuracy,
        reference_top1_accuracy=reference_accuracy,
        accuracy_drop=reference_accuracy - accuracy,
    )
    return measures


def regression_reference_measures(
    reference: Mapping[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """Pearson correlation of the Keras scores with the labels."""
    _require("reference", reference, "outputs")
    return {"pearson": _pearson(reference["outputs"], labels)}


def regression_measures(
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    labels: np.ndarray,
) -> dict[str, float]:
    """Relative max score difference and correlations (with Keras, labels)."""
    _require("reference", reference, "outputs")
    _require("artifact", candidate, "outputs")
    ref = np.asarray(reference["outputs"], np.float64).reshape(-1)
    cand = np.asarray(candidate["outputs"], np.float64).reshape(-1)
    scale = max(1.0, float(np.max(np.abs(ref))))
    return {
        "max_rel_diff_outputs": float(np.max(np.abs(cand - ref))) / scale,
        "pearson_with_reference": _pearson(cand, ref),
        "pearson": _pearson(cand, labels),
    }


def _pearson(x, y) -> float:
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 1.0 if np.allclose(x, y) else 0.0
    return float(np.corrcoef(x, y)[0, 1])
