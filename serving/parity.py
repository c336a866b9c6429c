"""Parity of exported artifacts with the Keras model: `parity.json`.

The same validation examples (`task.serving_examples`) go through

- Keras: each signature's Python function, run eagerly on the restored model
  (the reference);
- the reloaded SavedModel (`tf.saved_model.load`), every exported signature,
  each compared with its own Python function: `image_tensor`-style signatures
  get the uint8 images; string signatures get them PNG-encoded (lossless),
  wrapped in `tf.train.Example`s (`image/encoded`) for `tf_example`;
- each .tflite file with the LiteRT interpreter, and `model.onnx` with
  onnxruntime, compared with the task's `tflite_signature` function.

Signatures agree with each other: the same images through every SavedModel
signature (uint8, PNG bytes, `tf.Example`s) are also compared with the first
signature's Keras function (the export's default) on those images, and so is
the `tflite_signature` function when a .tflite or ONNX file was run, under
the `saved_model` tolerance (`signature_agreement` in the report, its
`reference` naming that first signature). A signature that preprocesses
differently (e.g. skips the evaluation crop) fails there.

What is measured and what each artifact must meet is the task's choice,
through its parity hooks (`official/core/parity_measures.py`, applied here):
`measures(reference, candidate, labels)` gives the numbers per artifact,
`reference_measures(reference, labels)` those of Keras alone, and
`tolerance_for(kind)` a tolerance whose `check(measures)` lists violated
bounds. The tolerances are fixed in code beside each task, by artifact kind
(`saved_model`, `none`, `float16`, `dynamic`, `int8`, `onnx`; e.g.
`official/vision/tasks/classification_parity.py`); tests do not loosen them.

Integer outputs of a full-integer .tflite file (`--int8_io=int8|uint8`) are
dequantized with each tensor's scale and zero point before they are measured
(`tflite_export.run`), and float inputs are quantized the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from official.core import parity_measures
from serving import tflite_export

_BATCH = 32  # Examples per call when running Keras and the SavedModel.

Measures = Callable[[Mapping, Mapping, np.ndarray], dict[str, float]]
ReferenceMeasures = Callable[[Mapping, np.ndarray], dict[str, float]]
ToleranceFor = Callable[[str], parity_measures.ParityTolerance]


class ParityError(RuntimeError):
    """An exported artifact disagrees with the Keras model beyond tolerance."""


def run_function(
    fn: Callable, inputs: np.ndarray | Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Calls a signature function (eager or loaded) in batches.

    `inputs` is one array, or a list of arrays (one per input, in order)
    for a signature of several inputs.
    """
    arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(arrays[0]), _BATCH):
        batch = [tf.constant(a[start : start + _BATCH]) for a in arrays]
        outputs = fn(*batch)
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


def compare(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    labels: np.ndarray,
    tolerance: parity_measures.ParityTolerance,
    measures: Measures,
) -> dict[str, Any]:
    """Measures `outputs` against `reference` and checks `tolerance`.

    Returns:
        The measures, `tolerance` (as a dict), `failures` (messages) and
        `passed`.
    """
    result: dict[str, Any] = dict(measures(reference, outputs, labels))
    failures = list(tolerance.check(result))
    result["tolerance"] = dataclasses.asdict(tolerance)
    result["failures"] = failures
    result["passed"] = not failures
    return result


def check_parity(
    images: np.ndarray,
    labels: np.ndarray,
    serving_signatures: Mapping[str, tuple[Callable, Sequence[tf.TensorSpec]]],
    tflite_fn: Callable,
    *,
    measures: Measures,
    reference_measures: ReferenceMeasures,
    tolerance_for: ToleranceFor,
    saved_model_dir: str | None = None,
    tflite_files: Mapping[str, str] | None = None,
    onnx_file: str | None = None,
    signature_inputs: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Runs the examples through Keras and every artifact; returns the report.

    Args:
        images: uint8 `[N, H, W, C]` validation images (`serving_examples`).
        labels: the N labels from `serving_examples`.
        serving_signatures: `{name: (fn, input_signature)}` of the signatures
            exported to the SavedModel (`serving_default` included), with the
            Python functions that are their Keras reference.
        tflite_fn: the function of `task.tflite_signature`, the reference of
            the .tflite files and of the ONNX file.
        measures: `task.parity_measures`.
        reference_measures: `task.parity_reference_measures`.
        tolerance_for: `task.parity_tolerance`, called with the artifact kind
            (`saved_model`, a quantization, or `onnx`).
        saved_model_dir: the SavedModel to reload, or None.
        tflite_files: `{quantization: path}`.
        onnx_file: a `model.onnx` to run with onnxruntime, or None.
        signature_inputs: `{signature: [array per input]}` for the same N
            examples (`task.parity_signature_inputs`); a signature not in it
            takes `images` as its one input (`encode_inputs`).

    Returns:
        `{"num_examples", "reference", "artifacts": {name: result},
        "signature_agreement": {"reference": name, "results": {signature:
        result}}, "passed"}`; `passed` is True when every artifact meets its
        tolerance and every signature (and the `tflite_signature` function,
        when a file made from it was run) agrees with the first signature on
        the same images.
    """
    reference = run_function(tflite_fn, images)
    report: dict[str, Any] = {
        "num_examples": len(images),
        "reference": {"name": "keras", **reference_measures(reference, labels)},
        "artifacts": {},
        "signature_agreement": {"reference": None, "results": {}},
    }
    agreement = report["signature_agreement"]

    def add(name: str, kind: str, tolerance_kind: str, expected, outputs) -> None:
        result = compare(
            expected, outputs, labels, tolerance_for(tolerance_kind), measures
        )
        report["artifacts"][name] = {"kind": kind, **result}

    if saved_model_dir is not None:
        loaded = tf.saved_model.load(saved_model_dir)
        for name, (fn, input_signature) in serving_signatures.items():
            inputs = _signature_inputs(
                name, input_signature, images, (signature_inputs or {}).get(name)
            )
            keras_outputs = run_function(fn, inputs)
            names = [spec.name for spec in input_signature]
            saved = run_function(
                functools.partial(_call_signature, loaded.signatures[name], names),
                inputs,
            )
            add(
                f"saved_model:{name}",
                "saved_model",
                "saved_model",
                keras_outputs,
                saved,
            )
            if agreement["reference"] is None:
                agreement["reference"], anchor = name, keras_outputs
            agreement["results"][name] = _agreement(
                anchor, saved, labels, tolerance_for("saved_model"), measures
            )
    if agreement["reference"] is not None and (tflite_files or onnx_file):
        agreement["results"]["tflite_signature"] = _agreement(
            anchor, reference, labels, tolerance_for("saved_model"), measures
        )
    for quantization, path in (tflite_files or {}).items():
        input_name = _tflite_input_name(path)
        outputs = tflite_export.run(path, {input_name: images})
        add(
            tflite_export.FILE_NAMES[quantization],
            f"tflite_{quantization}",
            quantization,
            reference,
            outputs,
        )
    if onnx_file is not None:
        from serving import onnx_export  # Needs the `onnx` extra.

        outputs = onnx_export.run(onnx_file, images)
        add(os.path.basename(onnx_file), "onnx", "onnx", reference, outputs)
    report["passed"] = all(
        r["passed"]
        for r in [
            *report["artifacts"].values(),
            *agreement["results"].values(),
        ]
    )
    return report


def _agreement(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    labels: np.ndarray,
    tolerance: parity_measures.ParityTolerance,
    measures: Measures,
) -> dict[str, Any]:
    """A signature's outputs against the `tflite_signature` function's."""
    differ = sorted(
        key
        for key, value in reference.items()
        if key not in outputs or np.shape(outputs[key]) != np.shape(value)
    )
    if differ:  # Another kind of output: nothing to compare.
        return {
            "compared": False,
            "reason": f"outputs {differ} are missing or shaped differently",
            "failures": [],
            "passed": True,
        }
    return {
        "compared": True,
        **compare(reference, outputs, labels, tolerance, measures),
    }


def _signature_inputs(
    name: str,
    input_signature: Sequence[tf.TensorSpec],
    images: np.ndarray,
    given: Sequence[np.ndarray] | None,
) -> list[np.ndarray]:
    """One array per input of signature `name`, for the N parity examples."""
    if given is None:
        if len(input_signature) != 1:
            raise ValueError(
                f"Signature {name!r} has {len(input_signature)} inputs: its task's "
                "parity_signature_inputs must give them."
            )
        return [encode_inputs(name, input_signature[0], images)]
    given = [np.asarray(a) for a in given]
    if len(given) != len(input_signature) or any(len(a) != len(images) for a in given):
        raise ValueError(
            f"parity_signature_inputs[{name!r}] must hold {len(input_signature)} "
            f"array(s) of {len(images)} examples. Received: "
            f"{[a.shape for a in given]}."
        )
    return given


def _call_signature(signature: Callable, input_names: list[str], *xs) -> dict:
    return signature(**dict(zip(input_names, xs, strict=True)))


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
    """One line per artifact: its measures (the task's) and ok/FAILED."""
    skip = {"kind", "tolerance", "failures", "passed"}
    lines = []
    for name, result in report["artifacts"].items():
        values = "  ".join(
            f"{key} {_short(value)}" for key, value in result.items() if key not in skip
        )
        lines.append(
            f"  {name:30s} {'ok' if result['passed'] else 'FAILED':6s} {values}"
        )
    results = (report.get("signature_agreement") or {}).get("results", {})
    failed = [name for name, result in results.items() if not result["passed"]]
    if results:
        agreed = "FAILED: " + ", ".join(failed) if failed else "ok"
        lines.append(f"  {'signatures agree':30s} {agreed}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def failure_summary(report: Mapping[str, Any]) -> str:
    """One line per failing artifact or signature, for the error message."""
    lines = [
        f"{name}: {'; '.join(result['failures'])}"
        for name, result in report["artifacts"].items()
        if not result["passed"]
    ]
    agreement = report.get("signature_agreement") or {"results": {}}
    lines += [
        f"signature {name} vs {agreement['reference']} on the same images "
        f"(preprocessing differs?): {'; '.join(result['failures'])}"
        for name, result in agreement["results"].items()
        if not result["passed"]
    ]
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], path: str) -> None:
    """Writes `report` as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
