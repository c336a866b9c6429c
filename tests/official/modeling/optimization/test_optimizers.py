"""Garden's optimizers update exactly as the Keras classes they extend."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.core import distribute
from official.modeling.optimization import optimizers


def _schedule():
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=20, warmup_target=0.5, warmup_steps=3
    )


def _run(optimizer, steps=6, strategy=None):
    """Applies `steps` updates to a kernel and a bias; returns their values."""
    strategy = strategy or tf.distribute.get_strategy()
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(steps, 2, 3)).astype("float32")
    with strategy.scope():
        layer = keras.layers.Dense(3, name="dense")
        layer.build((None, 2))
        layer.set_weights([np.arange(6, dtype="float32").reshape(2, 3), np.ones(3, "float32")])
        kernel, bias = layer.kernel, layer.bias
        optimizer.build([kernel, bias])

    replicas = strategy.num_replicas_in_sync

    @tf.function
    def step(g):
        def replica_fn(g):
            optimizer.apply([g, g[0]], [kernel, bias])

        strategy.run(replica_fn, args=(g,))

    for g in grads:
        # Each replica holds an equal share; Keras sums them over replicas.
        share = strategy.experimental_distribute_values_from_function(
            lambda _: tf.constant(g / replicas)
        )
        step(share)
    return kernel.numpy(), bias.numpy()


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [None, 1e-2])
def test_sgd_matches_keras(nesterov, weight_decay):
    args = dict(learning_rate=_schedule(), momentum=0.9, nesterov=nesterov,
                weight_decay=weight_decay)
    ours = optimizers.SGD(**args)
    ours.exclude_from_weight_decay(var_names=["bias"])
    theirs = keras.optimizers.SGD(**args)
    theirs.exclude_from_weight_decay(var_names=["bias"])
    for got, want in zip(_run(ours), _run(theirs)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert [v.name for v in ours.variables] == [v.name for v in theirs.variables]


def test_sgd_matches_keras_on_two_mirrored_replicas():
    strategy = distribute.get_strategy("mirrored", num_devices=2)
    assert strategy.num_replicas_in_sync == 2
    results = []
    for cls in (keras.optimizers.SGD, optimizers.SGD):
        with strategy.scope():
            optimizer = cls(learning_rate=0.1, momentum=0.9, weight_decay=1e-2)
        results.append(_run(optimizer, strategy=strategy))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_sgd_sparse_gradients_and_no_momentum_take_keras_path():
    table = keras.Variable(np.ones((4, 2), "float32"), name="table")
    optimizer = optimizers.SGD(learning_rate=0.5, momentum=0.9)
    grad = tf.IndexedSlices(tf.constant([[1.0, 2.0]]), tf.constant([2]), tf.constant([4, 2]))
    optimizer.apply_gradients([(grad, table)])
    np.testing.assert_allclose(table.numpy()[2], [0.5, 0.0])
    np.testing.assert_allclose(table.numpy()[[0, 1, 3]], np.ones((3, 2)))
    plain = optimizers.SGD(learning_rate=0.5)
    variable = keras.Variable(np.ones(2, "float32"), name="kernel")
    plain.apply_gradients([(tf.constant([1.0, -1.0]), variable)])
    np.testing.assert_allclose(variable.numpy(), [0.5, 1.5])


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Lamb", "RMSprop"])
def test_weight_decay_of_the_other_optimizers_matches_keras(name):
    args = dict(learning_rate=_schedule(), weight_decay=1e-2)
    ours, theirs = getattr(optimizers, name)(**args), getattr(keras.optimizers, name)(**args)
    for got, want in zip(_run(ours), _run(theirs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_config_round_trips_to_the_garden_class():
    optimizer = optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is optimizers.SGD
    assert restored.nesterov and restored.momentum == pytest.approx(0.9)
