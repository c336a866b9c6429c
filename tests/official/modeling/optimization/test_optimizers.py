"""Garden's optimizers update exactly as the Keras classes they extend."""

import pathlib
import re

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
        layer.set_weights(
            [np.arange(6, dtype="float32").reshape(2, 3), np.ones(3, "float32")]
        )
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
            lambda _, g=g: tf.constant(g / replicas)
        )
        step(share)
    return kernel.numpy(), bias.numpy()


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [None, 1e-2])
def test_sgd_matches_keras(nesterov, weight_decay):
    args = dict(
        learning_rate=_schedule(),
        momentum=0.9,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )
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
    grad = tf.IndexedSlices(
        tf.constant([[1.0, 2.0]]), tf.constant([2]), tf.constant([4, 2])
    )
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
    ours, theirs = (
        getattr(optimizers, name)(**args),
        getattr(keras.optimizers, name)(**args),
    )
    for got, want in zip(_run(ours), _run(theirs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_config_round_trips_to_the_garden_class():
    optimizer = optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is optimizers.SGD
    assert restored.nesterov and restored.momentum == pytest.approx(0.9)


def _graph_op_types(concrete_function):
    """Op types in a traced function's graph and the functions it calls."""
    graph_def = concrete_function.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += function.node_def
    return {node.op for node in nodes}


def test_fused_updates_are_in_the_traced_train_step():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-2)
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    ops = _graph_op_types(train_step.get_concrete_function(tf.TensorSpec([4, 3])))
    assert "ResourceApplyKerasMomentum" in ops
    assert "ResourceApplyGradientDescent" in ops


@pytest.mark.parametrize(
    "hook", ["_get_variable_index", "_apply_weight_decay", "_use_weight_decay"]
)
def test_a_missing_keras_hook_fails_loudly_at_build(monkeypatch, hook):
    for cls in keras.optimizers.SGD.__mro__:
        if hook in vars(cls) and cls.__module__.split(".")[0] == "keras":
            monkeypatch.delattr(cls, hook)
    optimizer = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    variable = keras.Variable(np.ones(2, "float32"), name="kernel")
    with pytest.raises(RuntimeError, match=f"SGD.{hook}.*keras>=3.15,<3.16"):
        optimizer.build([variable])


def test_a_missing_tensorflow_hook_fails_loudly_at_build(monkeypatch):
    monkeypatch.delattr(tf.__internal__.distribute.interim, "maybe_merge_call")
    optimizer = optimizers.Adam(learning_rate=0.1, weight_decay=1e-2)
    with pytest.raises(RuntimeError, match="maybe_merge_call.*tensorflow>=2.21,<2.22"):
        optimizer.build([keras.Variable(np.ones(2, "float32"), name="kernel")])


def test_the_checked_versions_are_pinned_in_setup_and_installed():
    from importlib import metadata

    from packaging.requirements import Requirement

    setup = (pathlib.Path(__file__).parents[4] / "setup.py").read_text()
    for package in ("keras", "tensorflow"):
        pin = re.search(rf'"({package}[<>=][^"]*)"', setup).group(1)
        assert pin in optimizers._CHECKED_WITH
        assert Requirement(pin).specifier.contains(metadata.version(package))
