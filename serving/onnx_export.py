"""Converting a task's TFLite-style signature to ONNX (`model.onnx`).

Needs the `onnx` extra (`pip install -e ".[onnx]"`: tf2onnx, onnx,
onnxruntime). The task's `tflite_signature(model)` function (uint8 images at
the model's input size for classification) is traced with the batch dimension
left open (`[None, H, W, 3]`) and converted with `tf2onnx.convert.from_function`
at opset `OPSET`; the output names are the function's output keys. A
detector's post-processing converts too: for any batch but a static 1 it is
one `tf.image.combined_non_max_suppression` (no per-image loop), which
tf2onnx maps to ONNX NonMaxSuppression
(`official/vision/ops/detection_generator.py`).

tf2onnx can succeed and still write a file that does not load (e.g. exact GELU,
see DESIGN.md), so every file is checked before it counts as exported
(`verify`): `onnx.checker.check_model(full_check=True)`, then one example run
through an onnxruntime session, with every expected output present and
finite. A file that fails either is removed. Parity with Keras
(`serving/parity.py`, artifact kind `onnx`) runs it with onnxruntime too.

Example:
```python
import os, tempfile
import keras
import numpy as np
import tensorflow as tf
from serving import onnx_export

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
def predict(features):
    return {"logits": model(features)}
spec = [tf.TensorSpec([1, 4], tf.float32, name="features")]
path = os.path.join(tempfile.mkdtemp(), "model.onnx")
onnx_export.convert(predict, spec, path)
onnx_export.verify(path, np.ones((1, 4), np.float32), ["logits"])
outputs = onnx_export.run(path, np.ones((3, 4), np.float32))
assert outputs["logits"].shape == (3, 2)
```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

FILE_NAME = "model.onnx"
OPSET = 17
_BATCH = 32  # Examples per onnxruntime call in `run`.
_INSTALL_HINT = 'install the extra: pip install -e ".[onnx]" (tf2onnx, onnxruntime)'


class ONNXExportError(RuntimeError):
    """An ONNX file could not be converted, is invalid, or does not run."""


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as e:
        raise ONNXExportError(
            f"The ONNX export needs {module!r}, which is not installed: "
            f"{_INSTALL_HINT}. ({e})"
        ) from e


def convert(
    fn: Callable,
    input_signature: Sequence[tf.TensorSpec],
    path: str,
    opset: int = OPSET,
) -> str:
    """Writes `fn` as an ONNX model at `path`, batch dimension left open.

    Args:
        fn: the task's `tflite_signature` function; takes the tensors of
            `input_signature` and returns a dict of named outputs.
        input_signature: named `tf.TensorSpec`s; their first dimension is
            made `None`.
        path: the .onnx file to write.
        opset: the ONNX opset.

    Returns:
        `path`.

    Raises:
        ONNXExportError: the extra is missing or tf2onnx failed (the partial
            file is removed).
    """
    _require("onnx")
    tf2onnx = _require("tf2onnx")
    specs = [
        tf.TensorSpec([None, *spec.shape[1:]], spec.dtype, name=spec.name)
        for spec in input_signature
    ]
    function = tf.function(fn, input_signature=specs, autograph=False)
    try:
        tf2onnx.convert.from_function(
            function, input_signature=specs, opset=opset, output_path=path
        )
    except Exception as e:  # tf2onnx raises many kinds; re-raised with context.
        _remove(path)
        raise ONNXExportError(
            f"tf2onnx could not convert the task's tflite_signature to ONNX "
            f"(opset {opset}): {type(e).__name__}: {e}"
        ) from e
    if not os.path.isfile(path):
        raise ONNXExportError(f"tf2onnx reported success but wrote no file at {path}.")
    return path


def _session(path: str):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # Errors only.
    return ort.InferenceSession(
        path, sess_options=options, providers=["CPUExecutionProvider"]
    )


def run(path: str, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Runs N examples through a one-input ONNX file with onnxruntime.

    Args:
        path: the .onnx file.
        inputs: `[N, ...]`, cast to the file's input type.

    Returns:
        `{output_name: array [N, ...]}`.
    """
    session = _session(path)
    (model_input,) = session.get_inputs()
    dtype = _numpy_dtype(model_input.type)
    names = [output.name for output in session.get_outputs()]
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(inputs), _BATCH):
        feed = {model_input.name: np.asarray(inputs[start : start + _BATCH], dtype)}
        for name, value in zip(names, session.run(names, feed)):
            chunks[name].append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in chunks.items()}


def _numpy_dtype(onnx_type: str) -> np.dtype:
    """`tensor(uint8)` -> uint8."""
    name = onnx_type.removeprefix("tensor(").removesuffix(")")
    return np.dtype({"float": "float32", "double": "float64"}.get(name, name))


def verify(path: str, example: np.ndarray, expected_outputs: Sequence[str]) -> None:
    """Checks `path` with `onnx.checker` and runs `example` with onnxruntime.

    Raises:
        ONNXExportError: the file is invalid, does not run, lacks an expected
            output or returns non-finite floats; the file is removed.
    """
    onnx = _require("onnx")
    name = os.path.basename(path)
    try:
        try:
            onnx.checker.check_model(path, full_check=True)
        except Exception as e:  # ValidationError, InferenceError, DecodeError.
            raise ONNXExportError(
                f"{name} written by tf2onnx is not a valid ONNX model "
                f"(onnx.checker): {type(e).__name__}: {e}"
            ) from e
        try:
            outputs = run(path, example)
        except Exception as e:  # onnxruntime's Fail, InvalidGraph, ...
            raise ONNXExportError(
                f"{name} does not run with onnxruntime: {type(e).__name__}: {e}"
            ) from e
        missing = sorted(set(expected_outputs) - set(outputs))
        if missing:
            raise ONNXExportError(
                f"{name} lacks outputs {missing}; it has {sorted(outputs)}."
            )
        for key, value in outputs.items():
            if np.issubdtype(value.dtype, np.floating) and not np.all(
                np.isfinite(value)
            ):
                raise ONNXExportError(
                    f"{name} returns non-finite values in output {key!r}."
                )
    except ONNXExportError:
        _remove(path)
        raise


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
