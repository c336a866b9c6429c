"""TF Serving's REST JSON <-> numpy, checked against a signature's TensorSpecs.

Request bodies (https://www.tensorflow.org/tfx/serving/api_rest):

- row format, `{"signature_name": "...", "instances": [...]}`: one list
  entry per example. With one input each entry is that input's value (or an
  object naming it); with several, each entry is `{"input_name": value}`.
  Every named input gets the same number of rows.
- columnar format, `{"inputs": value}` (one input) or
  `{"inputs": {"input_name": value, ...}}`: each value is the whole tensor.
- DT_STRING values are JSON strings (sent as their UTF-8 bytes) or
  `{"b64": "<base64>"}` for binary data such as JPEG files.
- Numbers must fit the input's dtype: integers for integer inputs (range
  checked), numbers for float inputs, `true`/`false` for DT_BOOL.

Long arrays of integers (images) arrive as `NumericText` from
`serving/numeric_json.py` and are read by numpy without Python lists; what
that fast path is not sure of goes through `json.loads` as usual.

Responses: row format gives `{"predictions": [...]}` (one entry per row: the
value when the signature has one output, else `{"output_name": value}`);
columnar gives `{"outputs": value}` or `{"outputs": {"output_name": value}}`.
A DT_STRING output is written as text, or as `{"b64": ...}` when its name ends
in `_bytes` or it is not valid UTF-8.

Imports only TensorFlow, numpy and the standard library.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json

import numpy as np
import tensorflow as tf

from serving.numeric_json import NumericText
from serving.request_limits import ElementBudget, RequestLimits
from serving.serving_error import invalid
from serving.signature import Signature, dtype_text

REQUEST_KEYS = ("signature_name", "instances", "inputs")


def is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_b64(value: dict, field: str) -> bytes:
    text = value["b64"]
    if not isinstance(text, str):
        raise invalid(f'{field}: the "b64" value must be a string.')
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f'{field}: the "b64" value is not valid base64.') from None


# The deepest nesting a string input may have (numpy stops at 64 dimensions).
MAX_RANK = 32
# Lists read by json.loads (what the integer fast path of numeric_json does
# not take: floats, ragged or empty lists): a batch of 80 float images of
# 224x224x3 written as nested lists has about 4 M.
MAX_SLOW_ARRAYS = 1 << 22


def object_array(items: list[bytes]) -> np.ndarray:
    """A 1-D object array of bytes (numpy would make `S` strings of a list)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _string_array(value, field: str) -> np.ndarray:
    """Nested lists of str / {"b64"} -> an object array of bytes (rectangular)."""
    flat: list[bytes] = []

    def walk(item, depth=0):
        if depth > MAX_RANK:
            raise invalid(
                f"{field}: the lists are nested more than {MAX_RANK} deep "
                f"(at most rank {MAX_RANK})."
            )
        if isinstance(item, str):
            flat.append(item.encode("utf-8"))
            return ()
        if is_b64(item):
            flat.append(decode_b64(item, field))
            return ()
        if isinstance(item, list):
            shapes = {walk(child, depth + 1) for child in item}
            if len(shapes) > 1:
                raise invalid(
                    f"{field}: the nested lists are ragged (not rectangular)."
                )
            return (len(item), *(shapes.pop() if shapes else ()))
        raise invalid(
            f'{field}: expected a string or {{"b64": ...}} for a DT_STRING input; '
            f"received {type(item).__name__} {str(item)[:40]!r}."
        )

    shape = walk(value)
    return object_array(flat).reshape(shape)


def _fast_array(value, dtype: np.dtype, check_shape) -> np.ndarray | None:
    """numpy's reading of a `NumericText` (or a list of them), else None."""
    if isinstance(value, NumericText):
        return value.to_array(dtype, check_shape)
    if isinstance(value, list) and value and isinstance(value[0], NumericText):
        parts = [_fast_array(item, dtype, check_shape) for item in value]
        if all(p is not None for p in parts) and len({p.shape for p in parts}) == 1:
            return np.stack(parts)
    return None


def plain(value, field: str = "request"):
    """`value` with every `NumericText` replaced by what json.loads gives."""
    if isinstance(value, NumericText):
        arrays = value.text.count("[")
        if arrays > MAX_SLOW_ARRAYS:
            # json.loads spends about a microsecond on each list and holds the
            # GIL: a body of "[]," costs seconds per megabyte.
            raise invalid(
                f"{field}: {arrays} nested lists that are not a rectangular array "
                f"of integers; at most {MAX_SLOW_ARRAYS} are read that way. Send "
                f'images as integers or {{"b64": ...}}.'
            )
        try:
            return value.plain()
        except json.JSONDecodeError as e:
            raise invalid(f"{field}: malformed JSON array: {e.msg}.") from None
    if isinstance(value, list):
        return [plain(item, field) for item in value]
    if isinstance(value, dict):
        return {key: plain(item, field) for key, item in value.items()}
    return value


class _Target:
    """What `to_array` needs to know of an input dtype, worked out once."""

    def __init__(self, dtype: tf.DType):
        self.string = dtype == tf.string
        self.bool = dtype == tf.bool
        self.numpy = None if self.string else np.dtype(dtype.as_numpy_dtype)
        self.integer = dtype.is_integer
        self.number = dtype.is_floating or dtype.is_complex
        self.limits = np.iinfo(self.numpy) if self.integer else None
        self.text = dtype_text(dtype)


_target = functools.cache(_Target)


def _declared_shape(value) -> list[int]:
    """The shape nested lists declare, read along their first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def to_array(
    value, dtype: tf.DType, field: str, budget: ElementBudget | None = None
) -> np.ndarray:
    """One JSON value -> an array of `dtype`, or INVALID_ARGUMENT naming `field`.

    `budget` counts the declared elements before the array is built
    (`--max_tensor_elements`); None: no limit.
    """
    target = _target(dtype)
    take = (lambda shape: budget.take(shape, field)) if budget else None
    if target.string:
        array = _string_array(plain(value, field), field)
        if take:
            take(array.shape)
        return array
    expected = target.text
    used = budget.used if budget else 0
    array = None if target.bool else _fast_array(value, target.numpy, take)
    try:
        if array is None:
            if budget:
                budget.used = used  # what the fast path counted is read again
            value = plain(value, field)
            if take:
                take(_declared_shape(value))
            array = np.asarray(value)
    except (ValueError, OverflowError) as e:
        raise invalid(f"{field}: cannot read as a {expected} tensor ({e}).") from None
    kind = array.dtype.kind
    if kind not in "biuf":
        shown = "strings" if kind == "U" else "non-numbers"
        raise invalid(
            f"{field}: expected numbers for a {expected} input; received {shown}."
        )
    if target.bool:
        if kind != "b":
            raise invalid(f"{field}: expected true/false for a DT_BOOL input.")
        return array
    if kind == "b":
        raise invalid(f"{field}: received true/false for a {expected} input.")
    if target.integer:
        if kind == "f":
            raise invalid(
                f"{field}: expected integers for a {expected} input; received "
                f"floating-point numbers."
            )
        limits = target.limits
        if array.size and (array.min() < limits.min or array.max() > limits.max):
            raise invalid(
                f"{field}: values must lie in [{limits.min}, {limits.max}] for a "
                f"{expected} input; received [{array.min()}, {array.max()}]."
            )
    elif not target.number:
        raise invalid(
            f"{field}: inputs of dtype {expected} are not supported over REST."
        )
    return array.astype(target.numpy)


def decode_request(
    body, signature_of, limits: RequestLimits | None = None
) -> tuple[str, dict[str, np.ndarray], bool]:
    """Parses a predict body; returns (signature_name, arrays, row_format).

    Args:
        body: the parsed JSON object.
        signature_of: maps a signature name to its `Signature` (raising
            INVALID_ARGUMENT for an unknown name).
        limits: the server's `RequestLimits` (tensor elements, checked while
            decoding; image pixels of DT_STRING inputs, checked after);
            None: the defaults.
    """
    limits = limits or RequestLimits()
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    for key in body:
        if key not in REQUEST_KEYS:
            raise invalid(
                f"Unknown field {key!r} in the request. "
                f"Valid: {', '.join(REQUEST_KEYS)}."
            )
    name = body.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid('"signature_name" must be a string.')
    if ("instances" in body) == ("inputs" in body):
        raise invalid(
            'Set exactly one of "instances" (row format) or "inputs" (columnar).'
        )
    signature = signature_of(name)
    budget = limits.budget()
    if "instances" in body:
        arrays = _decode_rows(body["instances"], signature, budget)
    else:
        arrays = _decode_columns(body["inputs"], signature, budget)
    signature.check_inputs(arrays)
    limits.check_strings(arrays, "instances" if "instances" in body else "inputs")
    return signature.name, arrays, "instances" in body


def _named(value) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def _decode_rows(instances, signature: Signature, budget) -> dict[str, np.ndarray]:
    if isinstance(instances, NumericText):  # a long list of numbers
        if len(signature.inputs) == 1:
            ((key, spec),) = signature.inputs.items()
            return {
                key: to_array(instances, spec.dtype, f"instances ({key!r})", budget)
            }
        instances = plain(instances, "instances")
    if not isinstance(instances, list) or not instances:
        raise invalid('"instances" must be a non-empty list (one entry per example).')
    single = len(signature.inputs) == 1
    if single and not _named(instances[0]):
        ((key, spec),) = signature.inputs.items()
        return {key: to_array(instances, spec.dtype, f"instances ({key!r})", budget)}
    columns: dict[str, list] = {}
    for index, instance in enumerate(instances):
        if not _named(instance):
            raise invalid(
                f"instances[{index}] must be an object {{input_name: value}} because "
                f"signature {signature.name!r} has inputs "
                f"{', '.join(signature.inputs)}."
            )
        if index and instance.keys() != columns.keys():
            raise invalid(
                f"instances[{index}] names inputs {sorted(instance)}, unlike "
                f"instances[0] ({sorted(columns)}); every instance needs the same ones."
            )
        for key, value in instance.items():
            columns.setdefault(key, []).append(value)
    return {
        key: to_array(values, _dtype(signature, key), f"instances[*][{key!r}]", budget)
        for key, values in columns.items()
    }


def _decode_columns(inputs, signature: Signature, budget) -> dict[str, np.ndarray]:
    if _named(inputs):
        return {
            key: to_array(value, _dtype(signature, key), f"inputs[{key!r}]", budget)
            for key, value in inputs.items()
        }
    if len(signature.inputs) != 1:
        raise invalid(
            f'"inputs" must be an object {{input_name: value}} because signature '
            f"{signature.name!r} has inputs {', '.join(signature.inputs)}."
        )
    ((key, spec),) = signature.inputs.items()
    return {key: to_array(inputs, spec.dtype, f"inputs ({key!r})", budget)}


def _dtype(signature: Signature, key: str) -> tf.DType:
    return signature.input_spec(key).dtype


# ---- responses -----------------------------------------------------------------


def _jsonable(name: str, array: np.ndarray):
    if array.dtype == object or array.dtype.kind == "S":
        as_b64 = name.endswith("_bytes")

        def convert(item):
            if isinstance(item, list):
                return [convert(child) for child in item]
            if not as_b64:
                try:
                    return item.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(item).decode("ascii")}

        return convert(array.tolist())
    return array.tolist()


def encode_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """`{"predictions": [...]}` (rows) or `{"outputs": ...}` (columnar)."""
    converted = {name: _jsonable(name, value) for name, value in outputs.items()}
    if not row_format:
        if len(converted) == 1:
            return {"outputs": next(iter(converted.values()))}
        return {"outputs": converted}
    sizes = {
        name: value.shape[0] if value.ndim else None for name, value in outputs.items()
    }
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise invalid(
            f"The outputs have different batch sizes {sizes}, so they cannot be "
            f'written as rows; send the request in columnar format ("inputs").'
        )
    if len(converted) == 1:
        return {"predictions": next(iter(converted.values()))}
    names = list(converted)
    rows = zip(*(converted[name] for name in names), strict=True)
    return {"predictions": [dict(zip(names, row, strict=True)) for row in rows]}
