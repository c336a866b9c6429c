"""Converting a task's TFLite signature to LiteRT (.tflite) files.

The task's `tflite_signature(model)` (static shapes, e.g. uint8 images
`[1, H, W, 3]`) is written as the only signature of a scratch SavedModel with
`keras.export.ExportArchive`, which `tf.lite.TFLiteConverter.from_saved_model`
converts with its variables frozen. (Converting a concrete function of a Keras 3
model directly leaves its variables as READ_VARIABLE ops that run as NaN.)

Quantizations (`QUANTIZATIONS`), each written to `FILE_NAMES[quantization]`:

- `none`: float32.
- `float16`: float16 weights, float32 compute.
- `dynamic`: int8 weights, activations quantized on the fly (dynamic range).
- `int8`: full integer, calibrated on a representative dataset; only builtin
  int8 kernels. A uint8 image input stays uint8; outputs stay float32
  (classes stay int32).

Only TFLite builtin ops are allowed, never Select TF (Flex) ops: a graph that
needs one fails to convert. Every file is then loaded and run once with the
LiteRT interpreter (`verify`), so a file that cannot run here is never reported
as exported.

Example:
```python
import tempfile
import keras
import numpy as np
import tensorflow as tf
from serving import tflite_export

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
def predict(features):
    return {"logits": model(features)}
spec = [tf.TensorSpec([1, 4], tf.float32, name="features")]
source = tflite_export.write_source_saved_model(model, predict, spec, tempfile.mkdtemp())
content = tflite_export.convert(source, "none")
outputs = tflite_export.run(content, {"features": np.ones((3, 4), np.float32)})
assert outputs["logits"].shape == (3, 2)
```
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
FILE_NAMES = {
    "none": "model_float32.tflite",
    "float16": "model_float16.tflite",
    "dynamic": "model_dynamic.tflite",
    "int8": "model_int8.tflite",
}
SIGNATURE_KEY = "serving_default"
NUM_THREADS = 2  # The interpreter uses one thread unless told (DESIGN.md).


class TFLiteExportError(RuntimeError):
    """A TFLite file could not be converted, or does not load and run."""


def write_source_saved_model(
    model: keras.Model,
    fn: Callable,
    input_signature: Sequence[tf.TensorSpec],
    path: str,
) -> str:
    """Writes `fn` as the only signature (`serving_default`) of a SavedModel."""
    from serving import saved_model_export

    saved_model_export.write_saved_model(
        model, {SIGNATURE_KEY: (fn, input_signature)}, path
    )
    return path


def convert(
    saved_model_dir: str,
    quantization: str,
    calibration_inputs: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """Converts the `serving_default` signature of `saved_model_dir`.

    Args:
        saved_model_dir: written by `write_source_saved_model`.
        quantization: one of `QUANTIZATIONS`.
        calibration_inputs: `{input_name: array [N, ...]}`, required for
            `int8`: each of the N examples is fed with the signature's batch
            size (1 for a `[1, H, W, 3]` signature).

    Returns:
        The .tflite flatbuffer.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization {quantization!r}. Valid: {', '.join(QUANTIZATIONS)}."
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[SIGNATURE_KEY]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if not calibration_inputs:
            raise ValueError(
                "int8 quantization needs calibration examples "
                "(--num_calibration_examples > 0)."
            )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: _representative(calibration_inputs)
    try:
        with warnings.catch_warnings():
            # Calibration runs the deprecated tf.lite.Interpreter internally.
            warnings.filterwarnings(
                "ignore", message=".*tf.lite.Interpreter is deprecated"
            )
            return converter.convert()
    except Exception as e:  # ConverterError and friends; re-raised with context.
        raise TFLiteExportError(
            f"TFLite conversion with quantization={quantization!r} failed. Only "
            f"TFLite builtin ops{' with int8 kernels' if quantization == 'int8' else ''} "
            f"are allowed (no Select TF / Flex ops): make the task's "
            f"tflite_signature use builtin ops only (e.g. no image decoding), or "
            f"drop this quantization. Converter said: {e}"
        ) from e


def _representative(
    inputs: Mapping[str, np.ndarray],
) -> Iterator[dict[str, np.ndarray]]:
    count = len(next(iter(inputs.values())))
    for i in range(count):
        yield {name: values[i : i + 1] for name, values in inputs.items()}


def _interpreter(model: bytes | str):
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model), num_threads=NUM_THREADS)
    return Interpreter(model_path=model, num_threads=NUM_THREADS)


def run(model: bytes | str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs N examples one batch at a time through a .tflite file or buffer.

    Args:
        model: a .tflite path or flatbuffer.
        inputs: `{input_name: array [N, ...]}`; examples are fed in batches of
            the file's static batch size.

    Returns:
        `{output_name: array [N, ...]}`.
    """
    interpreter = _interpreter(model)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    details = runner.get_input_details()
    missing = sorted(set(details) - set(inputs))
    if missing:
        raise ValueError(
            f"TFLite signature inputs {sorted(details)}; missing: {missing}. "
            f"Received: {sorted(inputs)}."
        )
    batch = int(next(iter(details.values()))["shape"][0]) or 1
    count = len(next(iter(inputs.values())))
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, count, batch):
        feed = {
            name: np.asarray(
                inputs[name][start : start + batch], details[name]["dtype"]
            )
            for name in details
        }
        for key, value in runner(**feed).items():
            chunks.setdefault(key, []).append(np.array(value))
    return {key: np.concatenate(values) for key, values in chunks.items()}


def verify(
    path: str, example: Mapping[str, np.ndarray], expected_outputs: Sequence[str]
) -> None:
    """Loads and runs one example through `path` with the LiteRT interpreter.

    Raises:
        TFLiteExportError: the file does not load, does not run (e.g. it
            needs Flex ops, which LiteRT does not link), lacks an expected
            output, or returns non-finite floats.
    """
    name = os.path.basename(path)
    try:
        outputs = run(path, example)
    except Exception as e:  # The interpreter raises RuntimeError/ValueError.
        raise TFLiteExportError(
            f"{name} does not run with the LiteRT interpreter "
            f"(ai_edge_litert, num_threads={NUM_THREADS}): {e}"
        ) from e
    missing = sorted(set(expected_outputs) - set(outputs))
    if missing:
        raise TFLiteExportError(
            f"{name} lacks outputs {missing}; it has {sorted(outputs)}."
        )
    for key, value in outputs.items():
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            raise TFLiteExportError(
                f"{name} returns non-finite values in output {key!r}: the "
                f"conversion is broken (e.g. unfrozen variables)."
            )
