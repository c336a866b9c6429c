"""Writing a SavedModel with named, typed serving signatures.

`tf.saved_model.save` on a Keras 3 model loses input names and dtypes, so the
SavedModel is written with `keras.export.ExportArchive`: the model is tracked
and each signature is an endpoint with an
explicit `input_signature` of named `tf.TensorSpec`s. Each endpoint returns a
dict, whose keys become the signature's output names. Each variable is stored
once in `variables/` (`_store_variables_once`): left alone, the archive saves
the Keras variables `track` lists and, again, the `tf.Variable`s the endpoints
capture, doubling the SavedModel's size.

While the SavedModel is written, TensorFlow's INFO notice that a signature's
input `resource` "will be renamed" is dropped: that input is a captured
variable, not one of the named inputs clients see. A notice naming any other
input still shows.

Class names go to `assets.extra/labels.txt` (`write_labels`), one per line:
the directory TF Serving reserves for files the graph does not read, and where
the model server (`serving/model_manager.py`) looks for `:classify` labels.

Example:
```python
import tempfile
import keras
import tensorflow as tf
from serving import saved_model_export

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
def predict(features):
    return {"logits": model(features)}
spec = [tf.TensorSpec([None, 4], tf.float32, name="features")]
path = tempfile.mkdtemp() + "/saved_model"
saved_model_export.write_saved_model(model, {"predict": (predict, spec)}, path)
loaded = tf.saved_model.load(path)
assert sorted(loaded.signatures) == ["predict", "serving_default"]
```
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence

import keras
import tensorflow as tf
from absl import logging as absl_logging

from official.core import checkpoints

SERVING_DEFAULT = "serving_default"
LABELS_PATH = os.path.join("assets.extra", "labels.txt")

# {signature_name: (fn, input_signature)}, as returned by `Task.serving_signatures`.
Signatures = dict[str, tuple[Callable, Sequence[tf.TensorSpec]]]

# tensorflow/python/saved_model/signature_serialization.py, on a captured variable.
_CAPTURED_RESOURCE_RENAMED = re.compile(
    r"Function `[^`]*` contains input name\(s\) resource with unsupported "
    r"characters which will be renamed to \S+ in the SavedModel\."
)


class _DropCapturedResourceRenames(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _CAPTURED_RESOURCE_RENAMED.fullmatch(record.getMessage())


@contextlib.contextmanager
def _without_captured_resource_renames() -> Iterator[None]:
    """Drops that notice from the absl logger inside the block, unless
    `--verbosity` is 1 (DEBUG) or more."""
    if absl_logging.get_verbosity() >= absl_logging.DEBUG:
        yield
        return
    logger = logging.getLogger("absl")
    drop = _DropCapturedResourceRenames()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def check_input_signature(name: str, input_signature: Sequence[tf.TensorSpec]) -> None:
    """Raises ValueError unless every input is a `tf.TensorSpec` with a name."""
    for index, spec in enumerate(input_signature):
        if not isinstance(spec, tf.TensorSpec) or not spec.name:
            raise ValueError(
                f"Signature {name!r}: input {index} must be a named tf.TensorSpec "
                f"(e.g. tf.TensorSpec([None, 224, 224, 3], tf.uint8, name='images')) "
                f"so that clients can call it by name. Received: {spec!r}."
            )
    names = [spec.name for spec in input_signature]
    if len(set(names)) != len(names):
        raise ValueError(f"Signature {name!r}: input names repeat. Received: {names}.")


def write_saved_model(
    model: keras.Model,
    signatures: Signatures,
    path: str,
    default: str | None = None,
) -> list[str]:
    """Writes `model` with one endpoint per entry of `signatures`.

    Args:
        model: the Keras model whose variables the endpoints use.
        signatures: `{name: (fn, input_signature)}`; each `fn` takes the
            tensors of its named `tf.TensorSpec`s and returns a dict of named
            output tensors.
        path: the SavedModel directory to write.
        default: the signature also exported as `serving_default`; the first
            entry of `signatures` when None. A `serving_default` key in
            `signatures` itself is used as is.

    Returns:
        The signature names written, `serving_default` included.
    """
    if not signatures:
        raise ValueError("No serving signatures to export: `signatures` is empty.")
    endpoints = dict(signatures)
    if SERVING_DEFAULT not in endpoints:
        default = default or next(iter(signatures))
        if default not in signatures:
            raise ValueError(
                f"Default signature {default!r} is not one of the signatures "
                f"{', '.join(signatures)}."
            )
        endpoints[SERVING_DEFAULT] = signatures[default]

    archive = keras.export.ExportArchive()
    archive.track(model)  # Also finds lookup tables (TrackableResources).
    for name, (fn, input_signature) in endpoints.items():
        check_input_signature(name, input_signature)
        archive.add_endpoint(name, fn, input_signature=list(input_signature))
    _store_variables_once(archive, model)
    with (
        _absl_log_level_kept(),
        _without_captured_resource_renames(),
        checkpoints.without_save_notices(),
    ):
        archive.write_out(path, verbose=False)
    return list(endpoints)


@contextlib.contextmanager
def _absl_log_level_kept() -> Iterator[None]:
    """Puts the absl logger's level back after a SavedModel is written.

    TensorFlow's writer sets absl's verbosity to FATAL while it lists each
    object's attributes, then back to the verbosity it read; setting it sets
    the absl logger's level, so a logger that inherited the root's level
    (NOTSET) was left at WARNING, and every absl INFO line the process wrote
    after an export (training logs, reports) was dropped.
    """
    logger = logging.getLogger("absl")
    level = logger.level
    try:
        yield
    finally:
        logger.setLevel(level)


def _backing_variable(variable: keras.Variable) -> tf.Variable | keras.Variable:
    """The `tf.Variable` a Keras 3 (TensorFlow backend) variable holds."""
    value = variable.value  # Outside an autocast scope: the tf.Variable itself.
    return value if isinstance(value, tf.Variable) else variable


def _store_variables_once(archive: keras.export.ExportArchive, model: keras.Model):
    """Points the archive's variable collections at the backing `tf.Variable`s.

    `track(model)` lists the model's Keras variables (each a trackable object
    of its own, saved as such) and `write_out` lists the `tf.Variable`s the
    endpoints capture, in `_all_variables`: the same weights twice in
    `variables/`. With both lists holding the same `tf.Variable` objects the
    checkpoint stores each once; the reloaded SavedModel keeps its
    `variables`, `trainable_variables` and `non_trainable_variables`.
    """
    for name, variables in (
        ("variables", model.variables),
        ("trainable_variables", model.trainable_variables),
        ("non_trainable_variables", model.non_trainable_variables),
    ):
        archive.add_variable_collection(name, [_backing_variable(v) for v in variables])


def write_labels(saved_model_dir: str, class_names: Sequence[str]) -> str:
    """Writes `saved_model_dir/assets.extra/labels.txt`, one name per line.

    Returns:
        The path written.
    """
    path = os.path.join(saved_model_dir, LABELS_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(class_names) + "\n")
    return path
