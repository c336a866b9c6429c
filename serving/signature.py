"""One callable signature of a loaded SavedModel, with its input checks.

A `Signature` holds the named `tf.TensorSpec`s of one signature and a way to
run it: a callable of the TF1 `Session` that loaded the SavedModel
(`Signature.from_session`, what the server uses: one `RunCallable` per
request, as TF Serving's `Session::Run`), or a concrete function from
`tf.saved_model.load(...).signatures[name]` (`Signature.from_function`).
`check_inputs` refuses, before anything runs, a request whose input names,
dtypes or shapes do not match the signature, with a message naming the input
and what was expected; `run` takes and returns numpy arrays.

Imports only TensorFlow, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from serving.serving_error import ServingError, invalid


def shape_text(shape) -> str:
    """`[-1, 32, 32, 3]` for a TensorShape or a list (unknown dims as -1)."""
    dims = shape.as_list() if isinstance(shape, tf.TensorShape) else list(shape)
    return "[" + ", ".join("-1" if d is None else str(d) for d in dims) + "]"


def dtype_text(dtype: tf.DType) -> str:
    """TF Serving's dtype names: DT_FLOAT, DT_UINT8, DT_STRING, ..."""
    dtype = tf.dtypes.as_dtype(dtype)
    return _DT_NAMES.get(dtype, "DT_" + dtype.name.upper())


_DT_NAMES = {
    tf.float16: "DT_HALF",
    tf.bfloat16: "DT_BFLOAT16",
    tf.float32: "DT_FLOAT",
    tf.float64: "DT_DOUBLE",
    tf.int8: "DT_INT8",
    tf.int16: "DT_INT16",
    tf.int32: "DT_INT32",
    tf.int64: "DT_INT64",
    tf.uint8: "DT_UINT8",
    tf.uint16: "DT_UINT16",
    tf.uint32: "DT_UINT32",
    tf.uint64: "DT_UINT64",
    tf.bool: "DT_BOOL",
    tf.string: "DT_STRING",
    tf.complex64: "DT_COMPLEX64",
    tf.complex128: "DT_COMPLEX128",
}


class Signature:
    """A named, typed signature of one loaded model version.

    Build one with `from_session` (what the server does) or `from_function`.

    Args:
        name: the signature key (e.g. "serving_default").
        inputs: `{input_name: tf.TensorSpec}`.
        outputs: `{output_name: tf.TensorSpec}`.
        call: `call(arrays) -> {output_name: np.ndarray}`, the raw run.
        function: the concrete function behind `call`, if any.

    Attributes:
        name, inputs, outputs, function: as given.
        batchable: whether concurrent requests may be concatenated along
            axis 0: every input and output has an unknown leading dimension.
    """

    def __init__(self, name: str, inputs: dict, outputs: dict, call, function=None):
        self.name = name
        self.inputs: dict[str, tf.TensorSpec] = inputs
        self.outputs: dict[str, tf.TensorSpec] = outputs
        self.function = function
        self._call = call
        self.batchable = all(
            spec.shape.rank and spec.shape[0] is None
            for spec in (*self.inputs.values(), *self.outputs.values())
        )
        # Each input's numpy dtype (None: DT_STRING: object or bytes arrays)
        # and dims (None: any rank), which `check_inputs` compares in plain
        # Python on every request.
        self._rules = {
            key: (
                None
                if spec.dtype == tf.string
                else np.dtype(spec.dtype.as_numpy_dtype),
                None if spec.shape.rank is None else tuple(spec.shape.as_list()),
            )
            for key, spec in self.inputs.items()
        }

    @classmethod
    def from_function(cls, name: str, function) -> Signature:
        """The concrete function `loaded.signatures[name]`, called on tensors."""
        args, inputs = function.structured_input_signature
        if args:
            raise ValueError(
                f"Signature {name!r} takes positional inputs; serving needs "
                f"named inputs (export with named tf.TensorSpecs)."
            )
        outputs = function.structured_outputs
        if not isinstance(outputs, dict):
            raise ValueError(f"Signature {name!r} does not return a dict of outputs.")

        def call(arrays):
            tensors = {
                key: tf.constant(array, dtype=inputs[key].dtype)
                for key, array in arrays.items()
            }
            return {key: value.numpy() for key, value in function(**tensors).items()}

        return cls(
            name,
            dict(inputs),
            {key: tf.TensorSpec(v.shape, v.dtype, key) for key, v in outputs.items()},
            call,
            function,
        )

    @classmethod
    def from_session(cls, name: str, signature_def, session) -> Signature:
        """The signature `name` (a `SignatureDef`) of the graph `session` runs.

        The session must have loaded the SavedModel (variables restored,
        tables initialized). The run is one `Session` callable made here, so a
        request costs a single C++ call with no Python graph work.
        """

        def specs(infos):
            return {
                key: tf.TensorSpec(
                    tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype), key
                )
                for key, info in sorted(infos.items())
            }

        inputs, outputs = specs(signature_def.inputs), specs(signature_def.outputs)
        feeds, fetches = list(inputs), list(outputs)
        # `Session.make_callable` with feeds is `Session.run` in Python; a
        # callable from `CallableOptions` is the C API's `RunCallable`.
        runner = session._make_callable_from_options(  # noqa: SLF001
            config_pb2.CallableOptions(
                feed=[signature_def.inputs[key].name for key in feeds],
                fetch=[signature_def.outputs[key].name for key in fetches],
            )
        )

        def call(arrays):
            return dict(zip(fetches, runner(*[arrays[key] for key in feeds])))

        return cls(name, inputs, outputs, call)

    def __repr__(self) -> str:
        return f"Signature({self.name!r}, inputs={list(self.inputs)})"

    def _expected(self) -> str:
        return ", ".join(
            f"{key} ({dtype_text(spec.dtype)} {shape_text(spec.shape)})"
            for key, spec in self.inputs.items()
        )

    def input_spec(self, key: str) -> tf.TensorSpec:
        """The spec of input `key`; INVALID_ARGUMENT naming the valid ones."""
        if key not in self.inputs:
            raise invalid(
                f"Unknown input {key!r} for signature {self.name!r}. "
                f"Expected inputs: {self._expected()}."
            )
        return self.inputs[key]

    def check_inputs(self, arrays: dict[str, np.ndarray]) -> None:
        """Raises INVALID_ARGUMENT unless names, dtypes and shapes all match."""
        if arrays.keys() != self._rules.keys():
            for key in arrays:
                self.input_spec(key)
            missing = [key for key in self.inputs if key not in arrays]
            raise invalid(
                f"Missing input {missing[0]!r} for signature {self.name!r}. "
                f"Expected inputs: {self._expected()}."
            )
        for key, (dtype, dims) in self._rules.items():
            array = arrays[key]
            if dtype is None:
                dtype_ok = array.dtype.kind in "OS"
            else:
                dtype_ok = array.dtype == dtype
            if not dtype_ok:
                raise invalid(
                    f"Input {key!r} of signature {self.name!r} must be "
                    f"{dtype_text(self.inputs[key].dtype)}; received "
                    f"{_array_dtype_text(array)}."
                )
            if dims is not None and (
                len(dims) != array.ndim
                or any(d is not None and d != n for d, n in zip(dims, array.shape))
            ):
                raise invalid(
                    f"Input {key!r} of signature {self.name!r} must have shape "
                    f"{shape_text(self.inputs[key].shape)}; received shape "
                    f"{list(array.shape)}."
                )

    def batch_size(self, arrays: dict[str, np.ndarray]) -> int | None:
        """The common leading dimension, or None when the request cannot batch."""
        if not self.batchable:
            return None
        sizes = {array.shape[0] for array in arrays.values()}
        return sizes.pop() if len(sizes) == 1 else None

    def run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature; TensorFlow errors become INVALID_ARGUMENT."""
        try:
            return self._call(arrays)
        except tf.errors.InvalidArgumentError as e:
            raise invalid(
                f"Signature {self.name!r} failed on this input: {e.message}"
            ) from None
        except tf.errors.OpError as e:
            raise ServingError(
                "INTERNAL", f"Signature {self.name!r} failed: {e.message}"
            ) from None


def _array_dtype_text(array: np.ndarray) -> str:
    if array.dtype == object or array.dtype.kind == "S":
        return "DT_STRING"
    try:
        return dtype_text(tf.dtypes.as_dtype(array.dtype))
    except TypeError:
        return str(array.dtype)
