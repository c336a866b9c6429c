"""The Classify and Regress APIs, mapped onto signatures that take tf.Examples.

TF Serving's Classify needs a classification SignatureDef. Garden exports
predict-style signatures instead, so Classify is answered by any signature
with exactly one DT_STRING input (serialized `tf.Example`s, e.g. Garden's
`tf_example`, input `examples`) and a `scores` or `probabilities` output of
shape `[batch, num_classes]` (TF Serving's classification SignatureDefs,
input `inputs`, outputs `classes` and `scores`, qualify too):

- the signature is `signature_name` when given; otherwise `serving_default`
  if it qualifies, else `tf_example`;
- each example's result lists every class in index order as
  `[label, score]`; the label is the signature's DT_STRING `classes` output
  when it has one, else the line of `labels.txt` (in the version directory or
  its `assets.extra/`), else the class index as a string.

REST body (as TF Serving documents it):

    {"signature_name": "tf_example",            # optional
     "context": {"feature": value, ...},        # optional, merged into each example
     "examples": [{"image/encoded": {"b64": "..."}}, ...]}

A feature value is a value or a list of values: JSON integers become an
`int64_list`, numbers with a fraction a `float_list`, strings (UTF-8) and
`{"b64": ...}` a `bytes_list`. A feature may not be in both `context` and an
example. The answer is `{"result": [[["label", score], ...], ...]}`.

Regress is answered by a signature with exactly one DT_STRING input and a
float `outputs` output of shape `[batch]` or `[batch, 1]` (TF Serving's
regression SignatureDef, method `tensorflow/serving/regress`): the one named,
else `serving_default` if it qualifies, else the model's only qualifying
signature. Its REST body is the classify body; the answer is
`{"result": [value, ...]}`, one float per example.

The bytes features of every example are checked against the server's
`--max_image_pixels` (`serving/request_limits.py`) before the model runs.

Imports only TensorFlow, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2, feature_pb2

from serving.json_codec import decode_b64, is_b64
from serving.request_limits import RequestLimits
from serving.serving_error import invalid

CLASSIFY_KEYS = ("signature_name", "context", "examples")
SCORE_OUTPUTS = ("scores", "probabilities")
REGRESS_OUTPUT = "outputs"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def _feature(value, field: str, limits: RequestLimits) -> feature_pb2.Feature:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise invalid(f"{field}: an empty list has no type; send at least one value.")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=values))
    if all(isinstance(v, str) or is_b64(v) for v in values):
        data = [
            decode_b64(v, field) if is_b64(v) else v.encode("utf-8") for v in values
        ]
        for item in data:
            limits.check_image(item, field)
        return feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=data))
    raise invalid(
        f'{field}: values must be all numbers or all strings / {{"b64": ...}}; '
        f"received {value!r:.60}."
    )


def examples_from_json(
    body, limits: RequestLimits | None = None
) -> tuple[str, list[bytes]]:
    """A classify or regress body -> (signature_name, serialized tf.Examples).

    `limits` (None: the defaults) bounds the pixels of images in bytes
    features.
    """
    limits = limits or RequestLimits()
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    for key in body:
        if key not in CLASSIFY_KEYS:
            raise invalid(
                f"Unknown field {key!r} in the classify request. "
                f"Valid: {', '.join(CLASSIFY_KEYS)}."
            )
    name = body.get("signature_name", "")
    context = body.get("context", {})
    examples = body.get("examples")
    if not isinstance(name, str):
        raise invalid('"signature_name" must be a string.')
    if not isinstance(context, dict):
        raise invalid('"context" must be an object {feature_name: value}.')
    if not isinstance(examples, list) or not examples:
        raise invalid('"examples" must be a non-empty list of {feature_name: value}.')
    context_features = {
        k: _feature(v, f"context[{k!r}]", limits) for k, v in context.items()
    }
    serialized = []
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            raise invalid(
                f"examples[{index}] must be an object {{feature_name: value}}."
            )
        features = dict(context_features)
        for key, value in example.items():
            if key in context_features:
                raise invalid(
                    f'examples[{index}][{key!r}]: the feature is also in "context"; '
                    f"features in the context may not appear in examples."
                )
            features[key] = _feature(value, f"examples[{index}][{key!r}]", limits)
        proto = example_pb2.Example(features=feature_pb2.Features(feature=features))
        serialized.append(proto.SerializeToString())
    return name, serialized


def classify_signature(loaded, signature_name: str):
    """The signature Classify uses (see the module docstring)."""
    if not signature_name:
        default = loaded.signatures.get("serving_default")
        signature_name = (
            "serving_default"
            if default is not None and _qualifies(default)
            else "tf_example"
        )
    signature = loaded.signature(signature_name)
    if not _qualifies(signature):
        raise invalid(
            f"Signature {signature.name!r} cannot classify: it needs exactly one "
            f"DT_STRING input (serialized tf.Examples) and a "
            f"{' or '.join(SCORE_OUTPUTS)} output. It has inputs "
            f"{list(signature.inputs)} and outputs {list(signature.outputs)}."
        )
    return signature


def _qualifies(signature) -> bool:
    specs = list(signature.inputs.values())
    return (
        len(specs) == 1
        and specs[0].dtype == tf.string
        and any(name in signature.outputs for name in SCORE_OUTPUTS)
    )


def classifications(loaded, signature, outputs: dict[str, np.ndarray]) -> list[list]:
    """Per example: `[(label, score), ...]` for every class, in index order."""
    score_name = next(name for name in SCORE_OUTPUTS if name in outputs)
    scores = np.asarray(outputs[score_name], dtype=np.float32)
    if scores.ndim != 2:
        raise invalid(
            f"Output {score_name!r} of signature {signature.name!r} has shape "
            f"{list(scores.shape)}; Classify needs [batch, num_classes]."
        )
    classes = outputs.get("classes")
    string_classes = classes is not None and classes.dtype == object
    result = []
    for row, row_scores in enumerate(scores):
        labels = []
        for index, score in enumerate(row_scores.tolist()):
            if string_classes:
                label = classes[row][index].decode("utf-8", "replace")
            elif loaded.labels is not None and index < len(loaded.labels):
                label = loaded.labels[index]
            else:
                label = str(index)
            labels.append((label, score))
        result.append(labels)
    return result


def regress_signature(loaded, signature_name: str):
    """The signature Regress uses (see the module docstring)."""
    if not signature_name:
        default = loaded.signatures.get("serving_default")
        if default is not None and _regresses(default):
            return default
        found = sorted(k for k, v in loaded.signatures.items() if _regresses(v))
        if len(found) != 1:
            raise invalid(
                f"Name the signature to regress with (signature_name): "
                f"serving_default cannot regress and the model has "
                f"{len(found)} signatures that can ({', '.join(found) or 'none'}); "
                f"one needs exactly one DT_STRING input and a float "
                f"{REGRESS_OUTPUT!r} output of shape [batch] or [batch, 1]."
            )
        signature_name = found[0]
    signature = loaded.signature(signature_name)
    if not _regresses(signature):
        raise invalid(
            f"Signature {signature.name!r} cannot regress: it needs exactly one "
            f"DT_STRING input (serialized tf.Examples) and a float "
            f"{REGRESS_OUTPUT!r} output of shape [batch] or [batch, 1]. It has "
            f"inputs {list(signature.inputs)} and outputs {list(signature.outputs)}."
        )
    return signature


def _regresses(signature) -> bool:
    specs = list(signature.inputs.values())
    output = signature.outputs.get(REGRESS_OUTPUT)
    return (
        len(specs) == 1
        and specs[0].dtype == tf.string
        and output is not None
        and output.dtype.is_floating
        and output.shape.rank in (None, 1, 2)
    )


def regressions(signature, outputs: dict[str, np.ndarray]) -> list[float]:
    """One float per example from the `outputs` output ([batch] or [batch, 1])."""
    values = np.asarray(outputs[REGRESS_OUTPUT], dtype=np.float32)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise invalid(
            f"Output {REGRESS_OUTPUT!r} of signature {signature.name!r} has shape "
            f"{list(values.shape)}; Regress needs [batch] or [batch, 1]."
        )
    return values.tolist()
