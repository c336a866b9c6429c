"""A checkpoint file that is truncated, bit-flipped or missing: one line, exit 1.

`checkpoints.reading` turns TensorFlow's errors (IndexError, DataLossError,
NotFoundError, a bare OpError) into a `CheckpointError` naming the file; the
trainer's restores and the training binary use it. The export side is in
`tests/serving/test_export_failures.py`.
"""

import os

import pytest
import tensorflow as tf
from absl import flags

from official import train
from official.core import checkpoints


def _save(model_dir):
    variables = {"a": tf.Variable(tf.range(64.0)), "b": tf.Variable(tf.ones([8, 8]))}
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(**variables), model_dir, 1)
    return manager.save(), variables


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize(
    "damage, suffix, cause",
    [
        (_truncate, ".data-00000-of-00001", "is shorter than its index says"),
        (lambda p: _flip(p, 100), ".data-00000-of-00001", "Checksum does not match"),
        (lambda p: _flip(p, 100), ".index", "block checksum mismatch"),
        (_truncate, ".index", "is corrupt: not an sstable"),
        (os.remove, ".data-00000-of-00001", "is missing"),
    ],
)
def test_reading_names_the_damaged_file(tmp_path, damage, suffix, cause):
    prefix, variables = _save(str(tmp_path))
    damage(prefix + suffix)
    with pytest.raises(checkpoints.CheckpointError) as info:
        with checkpoints.reading(prefix):
            tf.train.Checkpoint(**variables).restore(prefix)
    message = str(info.value)
    assert message.startswith(
        f"Checkpoint {prefix!r} cannot be read: {prefix + suffix!r} "
    )
    assert cause in message and "\n" not in message


def test_reading_lets_a_shape_mismatch_through(tmp_path):
    prefix, _ = _save(str(tmp_path))
    with pytest.raises(ValueError, match="incompatible") as info:
        with checkpoints.reading(prefix):
            tf.train.Checkpoint(a=tf.Variable(tf.zeros(3))).restore(prefix)
    assert not isinstance(info.value, checkpoints.CheckpointError)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_binary_on_a_truncated_checkpoint_exits_1_with_one_line(
    digits_dir, tmp_path, capsys, mode
):
    """Evaluating it, or resuming from it, fails before any step."""
    model_dir = str(tmp_path / "model")
    prefix, _ = _save(model_dir)
    _truncate(prefix + ".data-00000-of-00001")
    flags.FLAGS.unparse_flags()
    flags.FLAGS(
        [
            "train",
            "--experiment=resnet_digits",
            f"--mode={mode}",
            f"--model_dir={model_dir}",
            f"--params_override=task.train_data.input_path={digits_dir}/train-*,"
            f"task.validation_data.input_path={digits_dir}/validation-*,"
            "task.model.backbone.params.width_multiplier=0.125",
        ]
    )
    code = train.main([])
    err = capsys.readouterr().err
    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line == (
        f"error: CheckpointError: Checkpoint {prefix!r} cannot be read: "
        f"'{prefix}.data-00000-of-00001' is shorter than its index says "
        "(truncated): Read less bytes than requested. Copy the checkpoint again "
        "or use another one."
    )
    assert "Traceback" not in err
