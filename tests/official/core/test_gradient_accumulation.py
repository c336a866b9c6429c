"""Gradient accumulation: N batches of B update the weights as one batch of N*B."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.core import distribute
from official.core.base_task import Task
from official.core.config_loader import load_experiment_config
from official.core.experiment_config import ExperimentConfig
from official.core.trainer import Trainer

_FEATURES = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
_TARGETS = np.random.default_rng(1).normal(size=(64, 3)).astype("float32")


class _Regression(Task):
    """A dense model (no batch statistics) fit to fixed data in a fixed order."""

    features = _FEATURES

    def build_model(self):
        keras.utils.set_random_seed(7)
        return keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(4, activation="tanh"),
                keras.layers.Dense(3),
            ]
        )

    def build_inputs(self, data, input_context=None):
        batch = data.global_batch_size
        if input_context is not None:
            batch = input_context.get_per_replica_batch_size(batch)
        dataset = tf.data.Dataset.from_tensor_slices((self.features, _TARGETS))
        if input_context is not None and input_context.num_input_pipelines > 1:
            dataset = dataset.shard(
                input_context.num_input_pipelines, input_context.input_pipeline_id
            )
        return dataset.repeat().batch(batch, drop_remainder=True)

    def build_losses(self, labels, outputs, aux_losses=None):
        return tf.reduce_mean(tf.square(tf.cast(outputs, tf.float32) - labels))

    def serving_signatures(self, model):
        return {}

    def tflite_signature(self, model):
        return ()

    def serving_examples(self, num_examples):
        return _FEATURES[:num_examples], _TARGETS[:num_examples]


def _train(
    tmp_path,
    name,
    batch,
    accumulation,
    steps=1,
    strategy=None,
    precision="float32",
    task_cls=_Regression,
    **trainer,
):
    cfg = ExperimentConfig()
    cfg.runtime.mixed_precision_dtype = precision
    cfg.task.train_data.global_batch_size = batch
    cfg.trainer.override(
        {
            "train_steps": steps,
            "steps_per_loop": steps,
            "checkpoint_interval": steps,
            "validation_interval": 0,
            **trainer,
        }
    )
    cfg.trainer.optimizer_config.override(
        {
            "optimizer": {"type": "sgd", "params": {}},
            "gradient_accumulation_steps": accumulation,
        }
    )
    if "learning_rate" not in trainer.get("optimizer_config", {}):
        cfg.trainer.optimizer_config.learning_rate.params = {"learning_rate": 0.5}
    t = Trainer(
        cfg,
        task_cls(cfg.task),
        str(tmp_path / name),
        strategy or tf.distribute.get_strategy(),
    )
    t.train(t.distribute_inputs(cfg.task.train_data))
    return t


def _assert_same_weights(a, b, **tolerance):
    for x, y in zip(a.model.trainable_variables, b.model.trainable_variables):
        np.testing.assert_allclose(x.numpy(), y.numpy(), **tolerance)


def test_four_batches_of_two_equal_one_batch_of_eight(tmp_path):
    big = _train(tmp_path, "big", batch=8, accumulation=1)
    accumulated = _train(tmp_path, "acc", batch=2, accumulation=4)
    start = _Regression(None).build_model()
    moved = [
        not np.allclose(v.numpy(), w.numpy())
        for v, w in zip(big.model.trainable_variables, start.trainable_variables)
    ]
    assert all(moved)
    _assert_same_weights(big, accumulated, rtol=1e-5, atol=1e-6)
    # One optimizer update and one trainer step for the four batches.
    assert int(accumulated.optimizer.iterations.numpy()) == 1
    assert int(accumulated.global_step.numpy()) == 1
    assert accumulated.examples_per_step == 8
    for accumulator in accumulated.accumulators:
        assert not np.any(accumulator.numpy())


def test_iterations_advance_once_per_update_and_input_continues(tmp_path):
    # Three updates of 4 x 2 examples read the same 24 examples in the same
    # order as three updates of 8.
    big = _train(tmp_path, "big", batch=8, accumulation=1, steps=3)
    accumulated = _train(tmp_path, "acc", batch=2, accumulation=4, steps=3)
    assert int(accumulated.optimizer.iterations.numpy()) == 3
    assert int(accumulated.global_step.numpy()) == 3
    _assert_same_weights(big, accumulated, rtol=1e-5, atol=1e-6)


def test_jit_compiled_accumulation_matches(tmp_path):
    big = _train(tmp_path, "big", batch=8, accumulation=1)
    accumulated = _train(tmp_path, "acc", batch=2, accumulation=4, jit_compile=True)
    _assert_same_weights(big, accumulated, rtol=1e-5, atol=1e-6)


class _PoisonedBatch(_Regression):
    """Example 4 (the third batch of two) is NaN."""

    features = np.where(np.arange(64)[:, None] == 4, np.nan, _FEATURES).astype(
        "float32"
    )


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_nonfinite_batch_skips_its_whole_update(tmp_path, replicas):
    strategy = (
        distribute.get_strategy("mirrored", num_devices=2)
        if replicas == 2
        else tf.distribute.get_strategy()
    )
    t = _train(
        tmp_path,
        "skip",
        batch=2,
        accumulation=4,
        steps=2,
        strategy=strategy,
        task_cls=_PoisonedBatch,
        nonfinite_policy="skip",
    )
    # The first update (examples 0-7) is dropped, the second (8-15) applied.
    assert int(t.skipped_steps.numpy()) == 1
    assert int(t.optimizer.iterations.numpy()) == 1
    assert int(t.global_step.numpy()) == 2
    start = _Regression(None).build_model().trainable_variables
    for before, after in zip(start, t.model.trainable_variables):
        assert np.isfinite(after.numpy()).all()
        assert not np.allclose(before.numpy(), after.numpy())
    for accumulator in t.accumulators:
        assert not np.any(accumulator.numpy())


def test_schedule_and_ema_advance_per_update(tmp_path):
    # The rate is 0.5 for the first update and 0 after: if the schedule ran
    # per accumulated batch, the first update would already use 0.
    schedule = {
        "learning_rate": {
            "type": "stepwise",
            "params": {"boundaries": [0], "values": [0.5, 0.0]},
        }
    }
    one = _train(
        tmp_path,
        "one",
        batch=8,
        accumulation=1,
        steps=1,
        ema_decay=0.5,
        optimizer_config=schedule,
    )
    two = _train(
        tmp_path,
        "two",
        batch=2,
        accumulation=4,
        steps=2,
        ema_decay=0.5,
        optimizer_config=schedule,
    )
    _assert_same_weights(one, two, rtol=1e-5, atol=1e-6)
    assert one.optimizer.learning_rate.numpy() == pytest.approx(0.0)
    # EMA updated once per update: avg = 0.5 * (0.5 * w0 + 0.5 * w1) + 0.5 * w1.
    start = _Regression(None).build_model().trainable_variables
    for w0, w1, average in zip(start, two.model.trainable_variables, two.ema.averages):
        want = 0.25 * w0.numpy() + 0.75 * w1.numpy()
        np.testing.assert_allclose(average.numpy(), want, rtol=1e-5, atol=1e-6)


def test_mirrored_clipping_applies_to_the_whole_accumulated_gradient(tmp_path):
    # A small clip so that it acts: on one device Keras clips the gradient of
    # the batch of 8; on two replicas with accumulation the trainer must clip
    # the same (summed, accumulated) gradient, not each replica's share.
    clip = {"global_clipnorm": 0.05}
    big = _train(tmp_path, "big", batch=8, accumulation=1, optimizer_config=clip)
    mirrored = distribute.get_strategy("mirrored", num_devices=2)
    # One input pipeline: the replicas take turns at its batches of one, so
    # the 4 x 2 batches of an update are the same 8 examples.
    accumulated = _train(
        tmp_path,
        "acc",
        batch=2,
        accumulation=4,
        strategy=mirrored,
        optimizer_config=clip,
    )
    assert accumulated.clipping == ("global_clipnorm", 0.05)
    _assert_same_weights(big, accumulated, rtol=1e-5, atol=1e-6)
    unclipped = _train(tmp_path, "free", batch=8, accumulation=1)
    with pytest.raises(AssertionError):
        _assert_same_weights(big, unclipped, rtol=1e-5, atol=1e-6)


def test_mixed_float16_accumulates_with_loss_scaling(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        big = _train(
            tmp_path, "big", batch=8, accumulation=1, precision="mixed_float16"
        )
        accumulated = _train(
            tmp_path, "acc", batch=2, accumulation=4, precision="mixed_float16"
        )
        mirrored = _train(
            tmp_path,
            "mirrored",
            batch=2,
            accumulation=4,
            precision="mixed_float16",
            strategy=distribute.get_strategy("mirrored", num_devices=2),
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(accumulated.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(accumulated.optimizer.iterations.numpy()) == 1
    assert accumulated.model.layers[0].compute_dtype == "float16"
    _assert_same_weights(big, accumulated, rtol=2e-3, atol=2e-3)
    _assert_same_weights(big, mirrored, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("value", [0, -2])
def test_bad_accumulation_steps_are_refused(value):
    with pytest.raises(
        ValueError, match=r"gradient_accumulation_steps must be an integer >= 1"
    ):
        load_experiment_config(
            "resnet_digits",
            params_override=f"trainer.optimizer_config.gradient_accumulation_steps={value}",
        )


def test_keras_own_accumulation_argument_is_refused():
    with pytest.raises(
        KeyError, match="trainer.optimizer_config.gradient_accumulation_steps"
    ):
        load_experiment_config(
            "resnet_digits",
            params_override="trainer.optimizer_config.optimizer.params="
            "{gradient_accumulation_steps: 4}",
        )
