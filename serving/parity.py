"""Parity of exported artifacts with the Keras model: `parity.json`.

The same validation examples (`task.serving_examples`) go through

- Keras: each signature's Python function, run eagerly on the restored model
  (the reference);
- the reloaded SavedModel (`tf.saved_model.load`), every exported signature,
  each compared with its own Python function: `image_tensor`-style signatures
  get the uint8 images; string signatures get them PNG-encoded (lossless),
  wrapped in `tf.train.Example`s (`image/encoded`) for `tf_example`;
- each .tflite file with the LiteRT interpreter, compared with the task's
  `tflite_signature` function.

Outputs must include `probabilities` (and may include `logits` and `classes`).
Per artifact the report has the max abs difference of probabilities, the max
difference of logits relative to the reference's scale
(`max|dlogits| / max(1, max|logits|)`), top-1 agreement with Keras, top-1
accuracy against the labels and the drop from Keras' accuracy.

Tolerances (`TOLERANCES`) are fixed here, by artifact kind; tests do not
loosen them:

- `saved_model`: the same TF kernels, only graph rewrites: probabilities 1e-4,
  relative logits 1e-4, top-1 agreement >= 0.98.
- `none` (float32 .tflite): folded batch norm and XNNPACK kernels reorder
  float sums: probabilities 1e-4, relative logits 1e-3, agreement >= 0.98.
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

Agreement allows near-ties (top-2 probabilities within the tolerance) to
flip; with a few examples it means "all agree".
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from serving import tflite_export

_BATCH = 32  # Examples per call when running Keras and the SavedModel.


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """What an artifact must meet against the Keras reference.

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


TOLERANCES: dict[str, Tolerance] = {
    "saved_model": Tolerance(1e-4, 1e-4, 0.98),
    "none": Tolerance(1e-4, 1e-3, 0.98),
    "float16": Tolerance(1e-2, 1e-2, 0.95),
    "dynamic": Tolerance(0.15, None, 0.95),
    "int8": Tolerance(None, None, 0.90, 0.05),
}


class ParityError(RuntimeError):
    """An exported artifact disagrees with the Keras model beyond tolerance."""


def run_function(fn: Callable, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Calls a one-input signature function (eager or loaded) in batches."""
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(inputs), _BATCH):
        outputs = fn(tf.constant(inputs[start : start + _BATCH]))
        if not isinstance(outputs, Mapping):
            raise TypeError(
                f"A signature function must return a dict of named outputs "
                f"(logits, probabilities, classes). Received: {type(outputs).__name__}."
            )
        for key, value in outputs.items():
            chunks.setdefault(key, []).append(np.asarray(value))
    return {key: np.concatenate(values) for key, values in chunks.items()}


def encode_inputs(
    signature_name: str, spec: tf.TensorSpec, images: np.ndarray
) -> np.ndarray:
    """The validation images in the format of one signature's input."""
    if spec.dtype != tf.string:
        return images.astype(spec.dtype.as_numpy_dtype)
    encoded = [tf.io.encode_png(image).numpy() for image in images]
    if signature_name != "tf_example":
        return np.array(encoded, dtype=object)
    examples = []
    for data in encoded:
        feature = {
            "image/encoded": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[data])
            ),
            "image/format": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[b"png"])
            ),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        examples.append(example.SerializeToString())
    return np.array(examples, dtype=object)


def _top1(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    if "classes" in outputs:
        return np.asarray(outputs["classes"]).reshape(-1).astype(np.int64)
    return np.argmax(outputs["probabilities"], axis=-1)


def compare(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    labels: np.ndarray,
    tolerance: Tolerance,
) -> dict[str, Any]:
    """Measures `outputs` against `reference` and checks `tolerance`."""
    for name, values in (("reference", reference), ("artifact", outputs)):
        if "probabilities" not in values:
            raise ValueError(
                f"The {name} outputs have no 'probabilities' (outputs: "
                f"{sorted(values)}); parity needs classification outputs."
            )
    labels = np.asarray(labels).reshape(-1)
    ref_top1, top1 = _top1(reference), _top1(outputs)
    abs_diff = np.abs(
        np.asarray(outputs["probabilities"], np.float64) - reference["probabilities"]
    )
    diff_probs = float(np.max(abs_diff))
    result: dict[str, Any] = {
        "max_abs_diff_probabilities": diff_probs,
        "mean_abs_diff_probabilities": float(np.mean(abs_diff)),
    }
    diff_logits = None
    if "logits" in reference and "logits" in outputs:
        ref_logits = np.asarray(reference["logits"], np.float64)
        scale = max(1.0, float(np.max(np.abs(ref_logits))))
        diff_logits = float(np.max(np.abs(outputs["logits"] - ref_logits))) / scale
        result["max_rel_diff_logits"] = diff_logits
    reference_accuracy = float(np.mean(ref_top1 == labels))
    accuracy = float(np.mean(top1 == labels))
    result.update(
        top1_agreement=float(np.mean(top1 == ref_top1)),
        top1_accuracy=accuracy,
        reference_top1_accuracy=reference_accuracy,
        accuracy_drop=reference_accuracy - accuracy,
        tolerance=dataclasses.asdict(tolerance),
    )

    failures = []
    if tolerance.max_abs_diff_probabilities is not None and not (
        diff_probs <= tolerance.max_abs_diff_probabilities
    ):
        failures.append(
            f"max abs diff of probabilities {diff_probs:.3g} > "
            f"{tolerance.max_abs_diff_probabilities:g}"
        )
    if tolerance.max_rel_diff_logits is not None:
        if diff_logits is None:
            failures.append("no 'logits' output to compare")
        elif not diff_logits <= tolerance.max_rel_diff_logits:
            failures.append(
                f"relative max diff of logits {diff_logits:.3g} > "
                f"{tolerance.max_rel_diff_logits:g}"
            )
    if not result["top1_agreement"] >= tolerance.min_top1_agreement:
        failures.append(
            f"top-1 agreement with Keras {result['top1_agreement']:.3f} < "
            f"{tolerance.min_top1_agreement:g}"
        )
    if tolerance.max_accuracy_drop is not None and not (
        result["accuracy_drop"] <= tolerance.max_accuracy_drop
    ):
        failures.append(
            f"top-1 accuracy {accuracy:.3f} is {result['accuracy_drop']:.3f} below "
            f"Keras' {reference_accuracy:.3f} (allowed {tolerance.max_accuracy_drop:g})"
        )
    result["failures"] = failures
    result["passed"] = not failures
    return result


def check_parity(
    images: np.ndarray,
    labels: np.ndarray,
    serving_signatures: Mapping[str, tuple[Callable, Sequence[tf.TensorSpec]]],
    tflite_fn: Callable,
    saved_model_dir: str | None = None,
    tflite_files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Runs the examples through Keras and every artifact; returns the report.

    Args:
        images: uint8 `[N, H, W, C]` validation images (`serving_examples`).
        labels: `[N]` integer labels.
        serving_signatures: `{name: (fn, input_signature)}` of the signatures
            exported to the SavedModel (`serving_default` included), with the
            Python functions that are their Keras reference.
        tflite_fn: the function of `task.tflite_signature`, the reference of
            the .tflite files.
        saved_model_dir: the SavedModel to reload, or None.
        tflite_files: `{quantization: path}`.

    Returns:
        `{"num_examples", "reference", "artifacts": {name: result}, "passed"}`;
        `passed` is True when every artifact meets its tolerance.
    """
    reference = run_function(tflite_fn, images)
    report: dict[str, Any] = {
        "num_examples": len(images),
        "reference": {
            "name": "keras",
            "top1_accuracy": float(np.mean(_top1(reference) == np.reshape(labels, -1))),
        },
        "artifacts": {},
    }
    if saved_model_dir is not None:
        loaded = tf.saved_model.load(saved_model_dir)
        for name, (fn, input_signature) in serving_signatures.items():
            if len(input_signature) != 1:
                raise ValueError(
                    f"Parity supports one-input signatures; {name!r} has "
                    f"{len(input_signature)} inputs."
                )
            spec = input_signature[0]
            inputs = encode_inputs(name, spec, images)
            keras_outputs = run_function(fn, inputs)
            saved = run_function(
                functools.partial(_call_signature, loaded.signatures[name], spec.name),
                inputs,
            )
            result = compare(keras_outputs, saved, labels, TOLERANCES["saved_model"])
            report["artifacts"][f"saved_model:{name}"] = {
                "kind": "saved_model",
                **result,
            }
    for quantization, path in (tflite_files or {}).items():
        input_name = _tflite_input_name(path)
        outputs = tflite_export.run(path, {input_name: images})
        result = compare(reference, outputs, labels, TOLERANCES[quantization])
        report["artifacts"][tflite_export.FILE_NAMES[quantization]] = {
            "kind": f"tflite_{quantization}",
            **result,
        }
    report["passed"] = all(r["passed"] for r in report["artifacts"].values())
    return report


def _call_signature(signature: Callable, input_name: str, x: tf.Tensor) -> dict:
    return signature(**{input_name: x})


def _tflite_input_name(path: str) -> str:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=path).get_signature_list()
    inputs = signatures[tflite_export.SIGNATURE_KEY]["inputs"]
    if len(inputs) != 1:
        raise ValueError(
            f"Parity supports one-input TFLite files; {path} has {inputs}."
        )
    return inputs[0]


def format_table(report: Mapping[str, Any]) -> str:
    """One line per artifact: differences, agreement, accuracy, ok/FAILED."""
    lines = []
    for name, result in report["artifacts"].items():
        lines.append(
            f"  {name:30s} max|dprob| {result['max_abs_diff_probabilities']:.2e}  "
            f"top-1 agreement {result['top1_agreement']:.3f}  "
            f"accuracy {result['top1_accuracy']:.3f} "
            f"(Keras {result['reference_top1_accuracy']:.3f})  "
            f"{'ok' if result['passed'] else 'FAILED'}"
        )
    return "\n".join(lines)


def failure_summary(report: Mapping[str, Any]) -> str:
    """One line per failing artifact, for the error message."""
    lines = [
        f"{name}: {'; '.join(result['failures'])}"
        for name, result in report["artifacts"].items()
        if not result["passed"]
    ]
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], path: str) -> None:
    """Writes `report` as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
