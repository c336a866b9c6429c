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
  int8 kernels. A uint8 image input stays uint8. `int8_io` (`INT8_IO`) picks
  the type of the float inputs and outputs: `float32` (default; the file
  quantizes and dequantizes inside), `int8` or `uint8` (the tensors carry a
  scale and zero point; `run` quantizes float inputs and dequantizes such
  outputs with them). Integer outputs (classes) stay int32.

Only TFLite builtin ops are allowed by default: a graph that needs Select TF
(Flex) ops fails to convert with a message naming those ops. With
`allow_flex_ops=True` (`--allow_flex_ops`) the converter may add Flex ops; the
file then needs the Flex delegate wherever it runs, which the LiteRT Python
interpreter does not link, so such a file cannot be run (nor checked) here.
Every file without Flex ops is loaded and run once with the LiteRT interpreter
(`verify`), so a file that cannot run here is never reported as exported.

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
import re
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
INT8_IO = ("float32", "int8", "uint8")
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
    allow_flex_ops: bool = False,
    int8_io: str = "float32",
) -> bytes:
    """Converts the `serving_default` signature of `saved_model_dir`.

    Args:
        saved_model_dir: written by `write_source_saved_model`.
        quantization: one of `QUANTIZATIONS`.
        calibration_inputs: `{input_name: array [N, ...]}`, required for
            `int8`: each of the N examples is fed with the signature's batch
            size (1 for a `[1, H, W, 3]` signature).
        allow_flex_ops: also allow Select TF (Flex) ops.
        int8_io: for `int8`, the type of float inputs and outputs, one of
            `INT8_IO`.

    Returns:
        The .tflite flatbuffer.

    Raises:
        TFLiteExportError: the conversion failed; when it needs Flex ops that
            are not allowed, the message names them.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization {quantization!r}. Valid: {', '.join(QUANTIZATIONS)}."
        )
    if int8_io not in INT8_IO:
        raise ValueError(f"Unknown int8_io {int8_io!r}. Valid: {', '.join(INT8_IO)}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[SIGNATURE_KEY]
    )
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
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
        builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        converter.representative_dataset = lambda: _representative(calibration_inputs)
        if int8_io != "float32":
            io_type = tf.int8 if int8_io == "int8" else tf.uint8
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    converter.target_spec.supported_ops = [builtins] + (
        [tf.lite.OpsSet.SELECT_TF_OPS] if allow_flex_ops else []
    )
    try:
        with warnings.catch_warnings():
            # Calibration runs the deprecated tf.lite.Interpreter internally.
            warnings.filterwarnings(
                "ignore", message=".*tf.lite.Interpreter is deprecated"
            )
            return converter.convert()
    except Exception as e:  # ConverterError and friends; re-raised with context.
        kernels = " with int8 kernels" if quantization == "int8" else ""
        needed = _flex_ops_in_message(str(e))
        if needed and not allow_flex_ops:
            raise TFLiteExportError(
                f"TFLite conversion with quantization={quantization!r} needs "
                f"Select TF (Flex) ops: {', '.join(needed)}. Only TFLite builtin "
                f"ops{kernels} are allowed unless --allow_flex_ops is given (the "
                f"file then needs the Flex delegate wherever it runs): make the "
                f"task's tflite_signature use builtin ops only (e.g. no image "
                f"decoding), pass --allow_flex_ops, or drop this quantization. "
                f"Converter said: {e}"
            ) from e
        raise TFLiteExportError(
            f"TFLite conversion with quantization={quantization!r} failed. Only "
            f"TFLite builtin ops{kernels}"
            f"{' and Select TF (Flex) ops' if allow_flex_ops else ''} are allowed. "
            f"Converter said: {e}"
        ) from e


def _flex_ops_in_message(message: str) -> list[str]:
    """The TF op names a failed builtin-only conversion lists as Flex ops.

    The converter writes them as `TF Select ops: A, B` or `Flex ops: FlexA`,
    and per op as `'tf.A' op is neither a custom op nor a flex op`.
    """
    names = set()
    for line in message.splitlines():
        line = line.strip()
        for prefix in ("TF Select ops:", "Flex ops:"):
            if line.startswith(prefix):
                for name in line[len(prefix) :].split(","):
                    if name.strip():
                        names.add(name.strip().removeprefix("Flex"))
    names.update(
        re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    )
    return sorted(names)


def flex_ops(model: bytes | str) -> list[str]:
    """The Select TF (Flex) ops in a .tflite file or buffer, e.g. `FlexCumprod`."""
    ops = _interpreter(model)._get_ops_details()
    return sorted({op["op_name"] for op in ops if op["op_name"].startswith("Flex")})


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


def run(
    model: bytes | str, inputs: Mapping[str, np.ndarray], dequantize: bool = True
) -> dict[str, np.ndarray]:
    """Runs N examples one batch at a time through a .tflite file or buffer.

    Args:
        model: a .tflite path or flatbuffer.
        inputs: `{input_name: array [N, ...]}`; examples are fed in batches of
            the file's static batch size. Float arrays fed to a quantized
            integer input (one with a scale) are quantized with its scale and
            zero point; other arrays are cast to the input's type.
        dequantize: turn quantized integer outputs (int8/uint8 with a scale)
            into float32 with their scale and zero point.

    Returns:
        `{output_name: array [N, ...]}`.
    """
    interpreter = _interpreter(model)
    runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    details = runner.get_input_details()
    output_details = runner.get_output_details()
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
            name: to_input(inputs[name][start : start + batch], details[name])
            for name in details
        }
        for key, value in runner(**feed).items():
            value = np.array(value)
            if dequantize:
                value = dequantize_output(value, output_details[key])
            chunks.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in chunks.items()}


def _scale(detail: Mapping) -> tuple[float, int]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero_point)


def to_input(values: np.ndarray, detail: Mapping) -> np.ndarray:
    """`values` in the type of one input tensor (its interpreter details).

    A float array for an integer input with a scale is quantized:
    `round(x / scale) + zero_point`, clipped to the type's range.
    """
    values = np.asarray(values)
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = _scale(detail)
    if (
        scale
        and np.issubdtype(dtype, np.integer)
        and np.issubdtype(values.dtype, np.floating)
    ):
        info = np.iinfo(dtype)
        quantized = np.round(values / scale) + zero_point
        return np.clip(quantized, info.min, info.max).astype(dtype)
    return values.astype(dtype)


def dequantize_output(values: np.ndarray, detail: Mapping) -> np.ndarray:
    """`(q - zero_point) * scale` as float32 for a quantized integer output;
    other outputs unchanged."""
    scale, zero_point = _scale(detail)
    if scale and np.issubdtype(values.dtype, np.integer):
        return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return values


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
