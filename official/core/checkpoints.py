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
        raise FileNotFoundError("No checkpoint path given (--checkpoint_path is empty).")
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


def restore_model(model: keras.Model, path: str) -> str:
    """Restores the model's weights from a trainer checkpoint.

    Every model variable must be restored; the optimizer's state in the
    checkpoint is ignored. Returns the resolved checkpoint prefix.
    """
    prefix = resolve_checkpoint(path)
    status = tf.train.Checkpoint(model=model).restore(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(
            f"Checkpoint {prefix!r} does not match the model built from the "
            f"config: {e}"
        ) from None
    status.expect_partial()
    return prefix
