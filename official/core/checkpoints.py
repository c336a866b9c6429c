"""Finding and restoring training checkpoints.

The trainer writes `tf.train.Checkpoint(model=..., optimizer=..., step=...)`
through a `tf.train.CheckpointManager` into the model_dir (`ckpt-<N>` files).
"""

from __future__ import annotations

import keras
import tensorflow as tf


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
    names = {name for name, _ in tf.train.list_variables(prefix)}
    has_ema = any(name.startswith("ema/") for name in names)
    objects = {"model": model}
    if has_ema:
        ema = ExponentialMovingAverage(model.trainable_variables, decay=0.0)
        objects["ema"] = ema
    status = tf.train.Checkpoint(**objects).restore(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(
            f"Checkpoint {prefix!r} does not match the model built from the config: {e}"
        ) from None
    status.expect_partial()
    if has_ema:
        ema.copy_to_variables()
    return prefix


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
        ValueError: when a variable's shape differs from the checkpoint's
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
        root.restore(prefix).expect_partial()
    except (ValueError, tf.errors.InvalidArgumentError) as e:
        for variable, value in zip(floats, initial):
            variable.assign(value)
        hint = (
            " To reuse only the feature extractor (e.g. another number of classes), "
            "set trainer.init_checkpoint_modules=backbone."
            if modules == "all"
            else ""
        )
        raise ValueError(
            f"Checkpoint {prefix!r} does not fit the model: {e}.{hint}"
        ) from None
    matched, missing = [], []
    for variable, value in zip(floats, initial):
        restored = not bool(tf.reduce_all(tf.math.is_nan(variable)))
        (matched if restored else missing).append(_variable_path(variable))
        if not restored:
            variable.assign(value)
    if not matched:
        raise ValueError(
            f"Nothing in checkpoint {prefix!r} matches the {modules} of the model; "
            f"refusing to train from scratch silently. Check "
            f"trainer.init_checkpoint and trainer.init_checkpoint_modules."
        )
    return RestoreReport(prefix, modules, matched, missing)
