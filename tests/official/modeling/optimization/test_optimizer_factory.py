"""Tests of the optimizer and learning-rate schedule factory."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.base.registries import OPTIMIZERS, SCHEDULES
from official.modeling.optimization import components, optimizer_factory
from official.modeling.optimization.lr_schedules import (
    ConstantLearningRate,
    LinearWarmup,
)
from official.modeling.optimization.optimization_config import OptimizationConfig

WHERE = "trainer.optimizer_config"


def make_config(**overrides) -> OptimizationConfig:
    config = OptimizationConfig()
    config.override(overrides)
    return config


def schedule_config(type_: str, params: dict, **overrides) -> OptimizationConfig:
    return make_config(learning_rate={"type": type_, "params": params}, **overrides)


def values_at(schedule, steps) -> dict[str, list[float]]:
    """The schedule at `steps`: eager on ints, in tf.function on int64/float32."""

    @tf.function
    def graph(step):
        return schedule(step)

    return {
        "eager": [float(schedule(s)) for s in steps],
        "int64": [float(graph(tf.constant(s, tf.int64))) for s in steps],
        "float32": [float(graph(tf.constant(s, tf.float32))) for s in steps],
    }


def assert_schedule(schedule, expected: dict[int, float]) -> None:
    steps = list(expected)
    for mode, got in values_at(schedule, steps).items():
        np.testing.assert_allclose(
            got, list(expected.values()), rtol=1e-5, atol=1e-6, err_msg=mode
        )


def error_message(excinfo) -> str:
    return excinfo.value.args[0]


# ---- config validation ------------------------------------------------------


def test_default_config_validates():
    config = OptimizationConfig()
    config.validate(WHERE)
    assert config.optimizer.type == "sgd"
    assert config.learning_rate.type == "constant"
    schedule = optimizer_factory.build_learning_rate(config)
    assert float(schedule(0)) == pytest.approx(0.01)


def test_registries_hold_the_documented_names():
    assert {"sgd", "adam", "adamw", "lamb", "rmsprop"} <= set(OPTIMIZERS.names())
    assert {"constant", "stepwise", "cosine", "polynomial", "exponential"} <= set(
        SCHEDULES.names()
    )


def test_unknown_optimizer_type_suggests_closest_and_lists_names():
    config = make_config(optimizer={"type": "sgdd"})
    with pytest.raises(KeyError) as excinfo:
        config.validate(WHERE)
    message = error_message(excinfo)
    assert message.startswith(
        "trainer.optimizer_config.optimizer.type: Unknown optimizer 'sgdd'. "
        "Did you mean 'sgd'?"
    )
    for name in OPTIMIZERS.names():
        assert name in message


def test_unknown_schedule_type_suggests_closest_and_lists_names():
    config = schedule_config("cosin", {"initial_learning_rate": 0.1})
    with pytest.raises(KeyError) as excinfo:
        components.check_config(config, WHERE)
    message = error_message(excinfo)
    assert message.startswith("trainer.optimizer_config.learning_rate.type: ")
    assert "Did you mean 'cosine'?" in message
    for name in SCHEDULES.names():
        assert name in message


def test_bad_optimizer_param_names_key_and_valid_keys():
    config = make_config(optimizer={"type": "sgd", "params": {"momentom": 0.9}})
    with pytest.raises(KeyError) as excinfo:
        config.validate(WHERE)
    message = error_message(excinfo)
    assert "'trainer.optimizer_config.optimizer.params.momentom'" in message
    assert "Did you mean 'momentum'?" in message
    assert "nesterov" in message and "momentum" in message
    # Reserved arguments are not offered as valid keys.
    valid = message.split("Valid keys")[1]
    assert "learning_rate" not in valid and "weight_decay" not in valid


def test_bad_schedule_param_names_key_and_valid_keys():
    params = {"initial_learning_rate": 0.1, "decay_step": 100}
    config = schedule_config("cosine", params)
    with pytest.raises(KeyError) as excinfo:
        config.validate(WHERE)
    message = error_message(excinfo)
    assert "'trainer.optimizer_config.learning_rate.params.decay_step'" in message
    assert "Did you mean 'decay_steps'?" in message
    assert "alpha" in message


@pytest.mark.parametrize("key", ["learning_rate", "weight_decay", "global_clipnorm"])
def test_reserved_optimizer_params_point_to_their_field(key):
    config = make_config(optimizer={"type": "adam", "params": {key: 0.1}})
    with pytest.raises(KeyError) as excinfo:
        config.validate(WHERE)
    message = error_message(excinfo)
    assert f"'trainer.optimizer_config.optimizer.params.{key}'" in message
    assert f"'trainer.optimizer_config.{key}'" in message


def test_schedule_warmup_params_point_to_warmup_config():
    config = schedule_config(
        "cosine",
        {"initial_learning_rate": 0.1, "decay_steps": 10, "warmup_steps": 2},
    )
    with pytest.raises(KeyError) as excinfo:
        config.validate(WHERE)
    assert "'trainer.optimizer_config.warmup'" in error_message(excinfo)


def test_missing_required_schedule_param_names_key():
    config = schedule_config("cosine", {"initial_learning_rate": 0.1})
    with pytest.raises(KeyError) as excinfo:
        config.validate(WHERE)
    message = error_message(excinfo)
    assert "'trainer.optimizer_config.learning_rate.params.decay_steps'" in message


@pytest.mark.parametrize("type_", ["cosine", "polynomial", "poly"])
def test_warmup_as_long_as_the_decay_is_an_error(type_):
    # The warmup ramps to the schedule's value at its end: 0 here.
    config = schedule_config(
        type_,
        {"initial_learning_rate": 0.1, "decay_steps": 30},
        warmup={"warmup_steps": 60},
    )
    with pytest.raises(ValueError) as excinfo:
        config.validate(WHERE)
    message = error_message(excinfo)
    assert "trainer.optimizer_config.warmup.warmup_steps=60" in message
    assert "trainer.optimizer_config.learning_rate.params.decay_steps=30" in message
    config.override({"warmup": {"warmup_steps": 29}})
    config.validate(WHERE)


def test_stepwise_length_mismatch_is_reported_with_path():
    config = schedule_config("stepwise", {"boundaries": [10, 20], "values": [1.0]})
    with pytest.raises(ValueError, match=r"learning_rate\.params: .*boundaries"):
        config.validate(WHERE)


def test_adamw_needs_weight_decay():
    config = make_config(optimizer={"type": "adamw"})
    with pytest.raises(ValueError, match=r"optimizer_config\.weight_decay must be > 0"):
        config.validate(WHERE)
    make_config(optimizer={"type": "adamw"}, weight_decay=1e-4).validate(WHERE)


def test_negative_weight_decay_and_double_clipping_are_errors():
    with pytest.raises(ValueError, match=r"weight_decay must be >= 0\. Received: -1"):
        make_config(weight_decay=-1.0).validate(WHERE)
    config = make_config(
        optimizer={"type": "sgd", "params": {"clipnorm": 1.0}}, global_clipnorm=1.0
    )
    with pytest.raises(ValueError, match="Set only one of"):
        config.validate(WHERE)


# ---- schedules --------------------------------------------------------------


def test_constant_schedule():
    config = schedule_config("constant", {"learning_rate": 0.25})
    assert_schedule(
        optimizer_factory.build_learning_rate(config), {0: 0.25, 7: 0.25, 10**6: 0.25}
    )


def test_stepwise_schedule():
    # Int values (as YAML reads "1") are computed as floats.
    params = {"boundaries": [10, 20], "values": [1, 0.5, 0.1]}
    config = schedule_config("stepwise", params)
    schedule = optimizer_factory.build_learning_rate(config)
    assert_schedule(schedule, {0: 1.0, 10: 1.0, 11: 0.5, 20: 0.5, 21: 0.1, 99: 0.1})


def test_cosine_schedule():
    config = schedule_config(
        "cosine", {"initial_learning_rate": 1, "decay_steps": 100, "alpha": 0.1}
    )
    # lr = 1 * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, 100) / 100)) + alpha)
    expected = {0: 1.0, 25: 0.9 * 0.5 * (1 + math.cos(math.pi / 4)) + 0.1, 50: 0.55}
    expected.update({100: 0.1, 200: 0.1})
    assert_schedule(optimizer_factory.build_learning_rate(config), expected)


def test_polynomial_schedule():
    config = schedule_config(
        "polynomial",
        {
            "initial_learning_rate": 1.0,
            "decay_steps": 100,
            "end_learning_rate": 0,
            "power": 2,
        },
    )
    # lr = (1 - 0) * (1 - min(step, 100) / 100) ** 2
    expected = {0: 1.0, 50: 0.25, 90: 0.01, 100: 0.0, 150: 0.0}
    assert_schedule(optimizer_factory.build_learning_rate(config), expected)


@pytest.mark.parametrize(
    "staircase, expected",
    [
        (False, {0: 1.0, 5: math.sqrt(0.5), 10: 0.5, 15: 0.5**1.5}),
        (True, {0: 1.0, 5: 1.0, 10: 0.5, 15: 0.5, 20: 0.25}),
    ],
)
def test_exponential_schedule(staircase, expected):
    config = schedule_config(
        "exponential",
        {
            "initial_learning_rate": 1.0,
            "decay_steps": 10,
            "decay_rate": 0.5,
            "staircase": staircase,
        },
    )
    assert_schedule(optimizer_factory.build_learning_rate(config), expected)


def test_warmup_on_constant():
    config = schedule_config(
        "constant",
        {"learning_rate": 1.0},
        warmup={"warmup_steps": 10, "warmup_learning_rate": 0.1},
    )
    schedule = optimizer_factory.build_learning_rate(config)
    assert isinstance(schedule, LinearWarmup)
    # Start, middle, end and after: 0.1 + (1.0 - 0.1) * step / 10 below step 10.
    assert_schedule(schedule, {0: 0.1, 5: 0.55, 9: 0.91, 10: 1.0, 20: 1.0})


def test_warmup_on_cosine_uses_the_raw_step():
    config = schedule_config(
        "cosine",
        {"initial_learning_rate": 1.0, "decay_steps": 100},
        warmup={"warmup_steps": 10},
    )
    cosine = lambda step: 0.5 * (1 + math.cos(math.pi * step / 100))  # noqa: E731
    expected = {0: 0.0, 5: 0.5 * cosine(10), 10: cosine(10), 50: 0.5, 100: 0.0}
    assert_schedule(optimizer_factory.build_learning_rate(config), expected)


def test_no_warmup_returns_the_schedule_itself():
    config = schedule_config("constant", {"learning_rate": 1.0})
    schedule = optimizer_factory.build_learning_rate(config)
    assert isinstance(schedule, ConstantLearningRate)


def test_schedules_round_trip_through_keras_serialization():
    config = schedule_config(
        "cosine",
        {"initial_learning_rate": 1.0, "decay_steps": 100},
        warmup={"warmup_steps": 10, "warmup_learning_rate": 0.2},
    )
    schedule = optimizer_factory.build_learning_rate(config)
    serialized = keras.optimizers.schedules.serialize(schedule)
    as_json = json.loads(json.dumps(serialized))
    restored = keras.optimizers.schedules.deserialize(as_json)
    assert isinstance(restored, LinearWarmup)
    assert restored.get_config() == schedule.get_config()
    for step in (0, 5, 10, 60):
        assert float(restored(step)) == pytest.approx(float(schedule(step)))
    constant = ConstantLearningRate(0.3)
    assert ConstantLearningRate.from_config(constant.get_config()).learning_rate == 0.3


def test_linear_warmup_rejects_bad_steps():
    with pytest.raises(ValueError, match="warmup_steps"):
        LinearWarmup(ConstantLearningRate(1.0), warmup_steps=0)


# ---- optimizers -------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_each_optimizer_builds_and_applies_a_step(name):
    config = make_config(
        optimizer={"type": name},
        weight_decay=1e-4 if name == "adamw" else 0.0,
    )
    optimizer = optimizer_factory.build_optimizer(config)
    assert isinstance(optimizer, OPTIMIZERS.get(name))
    variable = keras.Variable(np.array([1.0, -2.0], "float32"), name="kernel")
    optimizer.apply_gradients([(tf.constant([0.5, -0.5]), variable)])
    assert int(optimizer.iterations) == 1
    assert not np.allclose(variable.numpy(), [1.0, -2.0])


def test_sgd_momentum_and_nesterov_come_from_params():
    config = make_config(
        optimizer={"type": "sgd", "params": {"momentum": 0.9, "nesterov": True}}
    )
    optimizer = optimizer_factory.build_optimizer(config)
    assert optimizer.momentum == pytest.approx(0.9) and optimizer.nesterov is True


def test_optimizer_steps_inside_tf_function_with_warmup():
    config = schedule_config(
        "cosine",
        {"initial_learning_rate": 1.0, "decay_steps": 100},
        warmup={"warmup_steps": 4},
    )
    optimizer = optimizer_factory.build_optimizer(config)
    variable = keras.Variable(np.zeros(1, "float32"))

    @tf.function
    def step():
        optimizer.apply_gradients([(tf.ones(1), variable)])

    for _ in range(3):
        step()
    # Rates at steps 0, 1, 2: 0, 0.25 * cos(4), 0.5 * cos(4), with cos(4) ~ 0.996.
    cos4 = 0.5 * (1 + math.cos(math.pi * 4 / 100))
    np.testing.assert_allclose(variable.numpy(), [-0.75 * cos4], rtol=1e-5)


def test_weight_decay_skips_biases_and_normalization():
    config = schedule_config("constant", {"learning_rate": 1.0}, weight_decay=0.1)
    optimizer = optimizer_factory.build_optimizer(config)
    dense = keras.layers.Dense(2, bias_initializer="ones")
    dense.build((None, 3))
    norm = keras.layers.LayerNormalization(beta_initializer="ones")
    norm.build((None, 2))
    variables = dense.trainable_variables + norm.trainable_variables
    before = {v.path: v.numpy().copy() for v in variables}
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    for v in variables:
        # SGD with lr=1 and zero gradients: decay multiplies by (1 - 0.1).
        decay = 0.9 if v.name == "kernel" else 1.0
        expected = before[v.path] * decay
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)
    assert {v.name for v in variables} == {"kernel", "bias", "gamma", "beta"}


def test_weight_decay_exclusion_matches_whole_names_only():
    config = schedule_config("constant", {"learning_rate": 1.0}, weight_decay=0.5)
    optimizer = optimizer_factory.build_optimizer(config)
    lookalike = keras.Variable(np.ones(2, "float32"), name="beta_scale")
    raw_bias = tf.Variable(np.ones(2, "float32"), name="dense/bias")
    optimizer.apply_gradients([(tf.zeros(2), lookalike), (tf.zeros(2), raw_bias)])
    np.testing.assert_allclose(lookalike.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(raw_bias.numpy(), [1.0, 1.0])


def test_no_weight_decay_by_default():
    optimizer = optimizer_factory.build_optimizer(OptimizationConfig())
    assert optimizer.weight_decay is None
    assert optimizer.global_clipnorm is None


def test_global_clipnorm_clips():
    config = schedule_config("constant", {"learning_rate": 1.0}, global_clipnorm=1.0)
    optimizer = optimizer_factory.build_optimizer(config)
    a = keras.Variable(np.zeros(1, "float32"))
    b = keras.Variable(np.zeros(1, "float32"))
    # Global norm of (3, 4) is 5; clipped to 1 the gradients are (0.6, 0.8).
    optimizer.apply_gradients([(tf.constant([3.0]), a), (tf.constant([4.0]), b)])
    np.testing.assert_allclose([a.numpy()[0], b.numpy()[0]], [-0.6, -0.8], rtol=1e-6)
