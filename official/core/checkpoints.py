"""Finding and restoring training checkpoints.

The trainer writes `tf.train.Checkpoint(model=..., optimizer=..., step=...)`
through a `tf.train.CheckpointManager` into the model_dir (`ckpt-<N>` files).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

import keras
import tensorflow as tf
from absl import logging as absl_logging

# INFO lines TensorFlow logs through absl on every save: a checkpoint
# (`functional_saver.py`) and a SavedModel (`fingerprinting_utils.py`).
SAVE_NOTICES = re.compile(
    r"Sharding callback duration: -?\d+ microseconds|Writing fingerprint to .*"
)


class _DropSaveNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and SAVE_NOTICES.fullmatch(record.getMessage())
        )


@contextlib.contextmanager
def without_save_notices() -> Iterator[None]:
    """Drops TensorFlow's per-save INFO lines (`SAVE_NOTICES`) inside the block.

    Only those messages, at INFO, from the `absl` and `tensorflow` loggers;
    every other line, and any warning, passes. A no-op with `--verbosity` 1
    (DEBUG) or more.

    Example:
    ```python
    import tempfile
    import tensorflow as tf
    from official.core import checkpoints
    with checkpoints.without_save_notices():
        tf.train.Checkpoint(v=tf.Variable(1.0)).write(tempfile.mkdtemp() + "/c")
    ```
    """
    if absl_logging.get_verbosity() >= absl_logging.DEBUG:
        yield
        return
    drop = _DropSaveNotices()
    loggers = [logging.getLogger("absl"), logging.getLogger("tensorflow")]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable files or another model's."""


@contextlib.contextmanager
def reading(prefix: str) -> Iterator[None]:
    """Turns TensorFlow's errors on unreadable checkpoint files into one line.

    Inside, a truncated, bit-flipped or missing file of checkpoint `prefix`
    raises `CheckpointError` naming the file and the cause. Other errors (a
    variable whose shape differs, out of memory) pass through.
    """
    try:
        yield
    except (
        tf.errors.DataLossError,  # a checksum mismatch in a data file
        tf.errors.NotFoundError,  # a missing data shard
        tf.errors.OutOfRangeError,
        IndexError,  # pybind11's OUT_OF_RANGE: a data file cut short
    ) as e:
        raise unreadable_error(prefix, e) from None
    except tf.errors.OpError as e:
        if type(e) is not tf.errors.OpError:
            raise
        # The checkpoint reader's own errors on a bad index ("not an sstable",
        # "block checksum mismatch") come as a bare OpError.
        raise unreadable_error(prefix, e) from None


def _cause(error: BaseException) -> str:
    """The first line of TensorFlow's message, without the op decoration."""
    text = getattr(error, "message", None) or str(error)
    text = (text.strip().splitlines() or [type(error).__name__])[0]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    return text[:400] + ("…" if len(text) > 400 else "")


def unreadable_error(prefix: str, error: BaseException) -> CheckpointError:
    """`CheckpointError` naming the file of `prefix` that `error` is about."""
    cause = _cause(error)
    index = prefix + ".index"
    data = sorted(tf.io.gfile.glob(prefix + ".data-*-of-*"))
    named = [path for path in (index, *data) if path in cause]
    named += re.findall(re.escape(prefix) + r"\.data-\d+-of-\d+", cause)
    shard = re.search(r"shard (\d+)", cause)
    if named:
        path = named[0]
    elif shard:
        suffix = f".data-{int(shard.group(1)):05d}-of-"
        path = next((p for p in data if suffix in p), prefix + suffix + "*")
    elif "sstable" in cause or "magic" in cause:
        path = index
    elif isinstance(error, IndexError) and len(data) == 1:
        path = data[0]
    else:
        path = ", ".join([index, *data])
    if not tf.io.gfile.exists(path) and "," not in path:
        state = "is missing"
    elif isinstance(error, IndexError):
        state = "is shorter than its index says (truncated)"
    else:
        state = "is corrupt"
    return CheckpointError(
        f"Checkpoint {prefix!r} cannot be read: {path!r} {state}: {cause}. Copy "
        "the checkpoint again or use another one."
    )


def resolve_checkpoint(path: str) -> str:
    """Returns a checkpoint prefix for `path` (a prefix, or a directory's latest).

    Raises:
        FileNotFoundError: naming `path` when it holds no checkpoint.
    """
    if not path:
        raise FileNotFoundError(
            "No checkpoint path given (--checkpoint_path is empty)."
        )
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"Checkpoint directory {path!r} contains no checkpoint (no "
                f"'checkpoint' index file with ckpt-N entries). Train first, or "
                f"pass a checkpoint prefix such as {path.rstrip('/')}/ckpt-100."
            )
        return latest
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise FileNotFoundError(
        f"Checkpoint {path!r} does not exist: expected a directory written by "
        f"training or a prefix with a '.index' file beside it."
    )


def checkpoint_step(path: str) -> int:
    """The global step stored in a checkpoint written by the trainer."""
    with reading(path):
        reader = tf.train.load_checkpoint(path)
        return int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def untracked_variables(model: keras.Model) -> list[str]:
    """Paths of the model variables a `tf.train.Checkpoint` cannot see.

    TensorFlow checkpoints follow attributes; a Keras 3 layer that keeps
    sublayers in a plain Python list or dict has their variables in
    `model.variables` but not in the checkpoint's object graph, so they are
    neither saved nor restored, silently.
    """
    seen = {id(obj) for obj in tf.train.TrackableView(model).descendants()}
    # `weights`, not `variables`: the dropout layers' random-generator states
    # are left out of checkpoints by Keras itself.
    return [v.path for v in model.weights if id(v) not in seen]


def check_checkpointable(model: keras.Model) -> None:
    """Raises ValueError naming the variables checkpoints would not save."""
    missing = untracked_variables(model)
    if missing:
        shown = ", ".join(missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"{len(missing)} variable(s) of model {model.name!r} are invisible to "
            f"checkpoints and would be neither saved nor restored: {shown}{more}. "
            "Their layers are held in a plain list or dict inside a layer; keep "
            "each sublayer in its own attribute (self.branch_0 = ...)."
        )


def restore_model(model: keras.Model, path: str) -> str:
    """Restores the model's weights from a trainer checkpoint.

    Every model variable must be restored (and visible to checkpoints:
    `check_checkpointable`); the optimizer's state in the
    checkpoint is ignored. When the checkpoint holds a moving average of the
    weights (`trainer.ema_decay` > 0), the model gets the averages. Returns
    the resolved checkpoint prefix.
    """
    from official.modeling.ema import ExponentialMovingAverage

    prefix = resolve_checkpoint(path)
    check_checkpointable(model)
    with reading(prefix):
        names = {name for name, _ in tf.train.list_variables(prefix)}
    has_ema = any(name.startswith("ema/") for name in names)
    objects = {"model": model}
    if has_ema:
        ema = ExponentialMovingAverage(model.trainable_variables, decay=0.0)
        objects["ema"] = ema
    with reading(prefix):
        check_shapes(objects, prefix)
        status = tf.train.Checkpoint(**objects).restore(prefix)
    # The optimizer's state is left out on purpose: no warning per value of
    # it, whether or not the model matched.
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise CheckpointError(
            f"Checkpoint {prefix!r} does not match the model built from the config: {e}"
        ) from None
    if has_ema:
        ema.copy_to_variables()
    return prefix


def check_shapes(objects: dict, prefix: str) -> None:
    """Raises one `CheckpointError` naming a variable whose shape differs.

    Walks the checkpoint's object graph beside `tf.train.Checkpoint(**objects)`
    (the trainer's names: `model`, `ema`) and compares each variable's shape
    with the checkpoint's before anything is restored: a config that does not
    fit the run (another `num_classes`, depth or width) is one line, not
    TensorFlow's restore error followed by a warning per unrestored value.
    """
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    if "_CHECKPOINTABLE_OBJECT_GRAPH" not in shapes:
        return  # Not object-based: the restore reports it.
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    stack = [
        (objects[ref.local_name], ref.node_id, ref.local_name)
        for ref in graph.nodes[0].children
        if ref.local_name in objects
    ]
    differ, seen = [], set()
    while stack:
        obj, node_id, path = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        node = graph.nodes[node_id]
        for attribute in node.attributes:
            if (
                attribute.name == "VARIABLE_VALUE"
                and attribute.checkpoint_key in shapes
            ):
                want = tuple(int(d) for d in getattr(obj, "shape", ()))
                have = tuple(int(d) for d in shapes[attribute.checkpoint_key])
                if want != have:
                    differ.append((getattr(obj, "path", None) or path, want, have))
        children = tf.train.TrackableView(obj).children(obj)
        for ref in node.children:
            if ref.local_name in children:
                child = children[ref.local_name]
                stack.append((child, ref.node_id, f"{path}/{ref.local_name}"))
    if differ:
        name, want, have = sorted(differ)[0]
        more = f" ({len(differ)} variables differ)" if len(differ) > 1 else ""
        raise CheckpointError(
            f"Checkpoint {prefix!r} does not fit the model built from the config: "
            f"variable {name} has shape {want} in the model and {have} in the "
            f"checkpoint{more}. Use the config the run was trained with (its "
            "params.yaml, beside the checkpoint), e.g. the same task.model."
        )


class RestoreReport:
    """What an initialization from a checkpoint restored.

    Attributes:
        checkpoint: the resolved checkpoint prefix.
        modules: "all" or "backbone".
        matched: paths of the variables restored.
        missing: paths of the variables the checkpoint had no value for.
    """

    def __init__(self, checkpoint: str, modules: str, matched: list, missing: list):
        self.checkpoint = checkpoint
        self.modules = modules
        self.matched = matched
        self.missing = missing

    def summary(self) -> str:
        total = len(self.matched) + len(self.missing)
        text = (
            f"Initialized {self.modules} from {self.checkpoint}: "
            f"{len(self.matched)}/{total} variables matched"
        )
        if self.missing:
            shown = ", ".join(self.missing[:10])
            more = (
                f" and {len(self.missing) - 10} more" if len(self.missing) > 10 else ""
            )
            text += f"; missing (kept their initial values): {shown}{more}"
        return text + "."


def _variable_path(variable) -> str:
    return getattr(variable, "path", None) or variable.name


def initialize_from_checkpoint(
    target: keras.Model, path: str, modules: str = "all"
) -> RestoreReport:
    """Restores `target`'s weights from another run's checkpoint, with a report.

    `modules="all"` restores the whole model; `"backbone"` restores `target`
    (a backbone) from the classifier checkpoint's `model.backbone`. Variables
    the checkpoint lacks keep their initial values and are listed as missing.

    Raises:
        CheckpointError: when a variable's shape differs from the checkpoint's
            (naming it), or when nothing at all matched.
    """
    prefix = resolve_checkpoint(path)
    root = (
        tf.train.Checkpoint(model=target)
        if modules == "all"
        else tf.train.Checkpoint(model=tf.train.Checkpoint(backbone=target))
    )
    floats = [v for v in target.variables if tf.as_dtype(v.dtype).is_floating]
    initial = [tf.identity(v) for v in floats]
    # NaN sentinels: a variable still NaN after the restore was not in the
    # checkpoint.
    for variable in floats:
        variable.assign(tf.fill(variable.shape, float("nan")))
    try:
        with reading(prefix):
            root.restore(prefix).expect_partial()
    except CheckpointError:
        for variable, value in zip(floats, initial):
            variable.assign(value)
        raise
    except (ValueError, tf.errors.InvalidArgumentError) as e:
        for variable, value in zip(floats, initial):
            variable.assign(value)
        hint = (
            " To reuse only the feature extractor (e.g. another number of classes), "
            "set trainer.init_checkpoint_modules=backbone."
            if modules == "all"
            else ""
        )
        raise CheckpointError(
            f"Checkpoint {prefix!r} does not fit the model: {_cause(e)}.{hint}"
        ) from None
    matched, missing = [], []
    for variable, value in zip(floats, initial):
        restored = not bool(tf.reduce_all(tf.math.is_nan(variable)))
        (matched if restored else missing).append(_variable_path(variable))
        if not restored:
            variable.assign(value)
    if not matched:
        raise CheckpointError(
            f"Nothing in checkpoint {prefix!r} matches the {modules} of the model; "
            f"refusing to train from scratch silently. Check "
            f"trainer.init_checkpoint and trainer.init_checkpoint_modules."
        )
    return RestoreReport(prefix, modules, matched, missing)
