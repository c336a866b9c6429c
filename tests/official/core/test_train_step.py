"""The train loop on a hand-built `TrainState`, without a Trainer.

The model is linear (`y = x @ w + b`) under a mean squared error, so every
update can be checked against the SGD step computed in numpy.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.core import distribute
from official.core.train_step import (
    TrainState,
    build_train_loop,
    make_accumulators,
    take_clipping,
)
from official.modeling.ema import ExponentialMovingAverage

_W0 = np.array([[0.5], [-1.0], [0.25]], dtype="float32")
_B0 = np.array([0.1], dtype="float32")
_X = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
_Y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")
_LR = 0.1


class _MeanSquaredError:
    """The two methods of a task the train step calls."""

    def build_losses(self, labels, outputs, aux_losses=None):
        return tf.reduce_mean(tf.square(outputs - labels))

    def update_metrics(self, metrics, labels, outputs):
        for metric in metrics:
            metric.update_state(labels, outputs)


def _state(strategy=None, accumulation_steps=1, ema_decay=0.0, clip=None, **settings):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.set_weights([_W0, _B0])
        optimizer = keras.optimizers.SGD(learning_rate=_LR, **(clip or {}))
        clipping = (
            take_clipping(optimizer) if strategy.num_replicas_in_sync > 1 else None
        )
        optimizer.build(model.trainable_variables)

        def counter(name):
            return tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name=name,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )

        global_step, skipped_steps = counter("global_step"), counter("skipped_steps")
        ema = (
            ExponentialMovingAverage(model.trainable_variables, ema_decay)
            if ema_decay
            else None
        )
        accumulators = (
            make_accumulators(model.trainable_variables)
            if accumulation_steps > 1
            else []
        )
    return TrainState(
        model=model,
        optimizer=optimizer,
        task=_MeanSquaredError(),
        strategy=strategy,
        global_step=global_step,
        skipped_steps=skipped_steps,
        train_loss=keras.metrics.Mean("loss"),
        train_metrics=[],
        accumulation_steps=accumulation_steps,
        accumulators=accumulators,
        clipping=clipping,
        ema=ema,
        **settings,
    )


def _run(state, features, labels, batch, num_steps):
    """Runs `num_steps` steps on `(features, labels)` in batches of `batch`."""
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch)
    iterator = iter(state.strategy.experimental_distribute_dataset(dataset))
    build_train_loop(state)(iterator, tf.constant(num_steps, tf.int32))


def _loss_and_grads(w, b, x, y):
    residual = x @ w + b - y
    return (
        float(np.mean(residual**2)),
        2.0 * x.T @ residual / len(x),
        2.0 * residual.sum(0) / len(x),
    )


def _assert_weights(state, w, b):
    kernel, bias = state.model.trainable_variables
    np.testing.assert_allclose(kernel.numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.numpy(), b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_steps_are_the_exact_sgd_updates_and_the_loss_decreases(jit_compile):
    state = _state(jit_compile=jit_compile)
    x, y = _X[:4], _Y[:4]
    w, b, losses = _W0, _B0, []
    for _ in range(3):
        loss, dw, db = _loss_and_grads(w, b, x, y)
        losses.append(loss)
        w, b = w - _LR * dw, b - _LR * db
    _run(state, np.tile(x, (3, 1)), np.tile(y, (3, 1)), batch=4, num_steps=3)
    _assert_weights(state, w, b)
    assert losses[0] > losses[1] > losses[2]
    assert float(state.train_loss.result()) == pytest.approx(np.mean(losses), rel=1e-5)
    assert int(state.global_step.numpy()) == 3
    assert int(state.optimizer.iterations.numpy()) == 3
    assert int(state.skipped_steps.numpy()) == 0


def test_four_accumulated_batches_of_two_are_one_batch_of_eight():
    big, accumulated = _state(), _state(accumulation_steps=4)
    _run(big, _X, _Y, batch=8, num_steps=1)
    _run(accumulated, _X, _Y, batch=2, num_steps=1)
    loss, dw, db = _loss_and_grads(_W0, _B0, _X, _Y)
    _assert_weights(big, _W0 - _LR * dw, _B0 - _LR * db)
    _assert_weights(accumulated, _W0 - _LR * dw, _B0 - _LR * db)
    # One update for the four batches; the accumulators end at zero.
    assert int(accumulated.optimizer.iterations.numpy()) == 1
    assert int(accumulated.global_step.numpy()) == 1
    for accumulator in accumulated.accumulators:
        assert not np.any(accumulator.numpy())
    # The mean of four equal-sized batch losses is the loss of the eight.
    assert float(accumulated.train_loss.result()) == pytest.approx(loss, rel=1e-5)
    assert float(accumulated.train_loss.count.numpy()) == 4


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_skip_drops_a_nonfinite_step_then_applies_the_next(accumulation_steps):
    state = _state(
        accumulation_steps=accumulation_steps, ema_decay=0.5, nonfinite_policy="skip"
    )
    # The first step's last batch holds a NaN; the second step's batches are clean.
    per_step = 2 * accumulation_steps
    x = _X[: 2 * per_step].copy()
    x[per_step - 1, 0] = np.nan
    y = _Y[: 2 * per_step]

    _run(state, x[:per_step], y[:per_step], batch=2, num_steps=1)
    _assert_weights(state, _W0, _B0)
    assert int(state.skipped_steps.numpy()) == 1
    assert int(state.global_step.numpy()) == 1
    assert int(state.optimizer.iterations.numpy()) == 0
    for average, start in zip(state.ema.averages, (_W0, _B0)):
        np.testing.assert_array_equal(average.numpy(), start)
    for accumulator in state.accumulators:
        assert not np.any(accumulator.numpy())
    # Only the clean batch (if any) reaches the loss metric.
    assert float(state.train_loss.count.numpy()) == accumulation_steps - 1
    assert np.isfinite(float(state.train_loss.result()))

    _run(state, x[per_step:], y[per_step:], batch=2, num_steps=1)
    _, dw, db = _loss_and_grads(_W0, _B0, x[per_step:], y[per_step:])
    w1, b1 = _W0 - _LR * dw, _B0 - _LR * db
    _assert_weights(state, w1, b1)
    assert int(state.skipped_steps.numpy()) == 1
    assert int(state.global_step.numpy()) == 2
    assert int(state.optimizer.iterations.numpy()) == 1
    for average, start, new in zip(state.ema.averages, (_W0, _B0), (w1, b1)):
        np.testing.assert_allclose(average.numpy(), 0.5 * start + 0.5 * new, rtol=1e-5)


def test_stop_applies_a_nonfinite_step_and_reports_its_loss():
    state = _state()
    x = _X[:2].copy()
    x[0, 0] = np.nan
    _run(state, x, _Y[:2], batch=2, num_steps=1)
    assert not np.isfinite(state.model.trainable_variables[0].numpy()).all()
    assert not np.isfinite(float(state.train_loss.result()))
    assert int(state.skipped_steps.numpy()) == 0
    assert int(state.global_step.numpy()) == 1


def test_two_replicas_clip_the_summed_gradient():
    mirrored = distribute.get_strategy("mirrored", num_devices=2)
    state = _state(mirrored, clip={"global_clipnorm": 0.05})
    assert state.clipping == ("global_clipnorm", 0.05)
    _run(state, _X[:4], _Y[:4], batch=4, num_steps=1)
    _, dw, db = _loss_and_grads(_W0, _B0, _X[:4], _Y[:4])
    norm = np.sqrt(np.sum(dw**2) + np.sum(db**2))
    assert norm > 0.05
    scale = 0.05 / norm
    _assert_weights(state, _W0 - _LR * scale * dw, _B0 - _LR * scale * db)


def test_state_refuses_inconsistent_settings():
    with pytest.raises(ValueError, match="accumulators must hold 2 variables"):
        dataclasses.replace(_state(), accumulation_steps=2)
    with pytest.raises(ValueError, match="nonfinite_policy must be one of stop, skip"):
        _state(nonfinite_policy="ignore")
    with pytest.raises(ValueError, match="accumulation_steps must be >= 1"):
        _state(accumulation_steps=0)
    with pytest.raises(ValueError, match="clipping is for more than one replica"):
        dataclasses.replace(_state(), clipping=("clipnorm", 1.0))


def test_a_model_runs_on_an_empty_local_batch():
    from official.core.train_step import call_on_local_batch

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    model = keras.Model(inputs, {"features": x, "logits": keras.layers.Dense(4)(x)})

    @tf.function
    def run(images):
        return call_on_local_batch(model, images)

    outputs, size = run(tf.zeros((0, 16, 16, 3)))
    assert int(size) == 0
    assert outputs["features"].shape == (0, 8, 8, 8)
    assert outputs["logits"].shape == (0, 8, 8, 4)
    images = tf.random.stateless_normal((2, 16, 16, 3), seed=(1, 2))
    outputs, size = run(images)
    assert int(size) == 2
    np.testing.assert_allclose(
        outputs["logits"], model(images, training=False)["logits"], atol=1e-6
    )
