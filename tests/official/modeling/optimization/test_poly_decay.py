"""The poly learning-rate schedule and its registration."""

import keras
import pytest

from official.modeling.optimization import components, optimizer_factory
from official.modeling.optimization.lr_schedules import PolyDecay
from official.modeling.optimization.optimization_config import (
    LearningRateConfig,
    OptimizationConfig,
    WarmupConfig,
)


def test_values():
    schedule = PolyDecay(0.01, decay_steps=100)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9, rel=1e-5)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(250)) == pytest.approx(0.0, abs=1e-9)
    floor = PolyDecay(0.01, decay_steps=10, power=1.0, end_learning_rate=0.001)
    assert float(floor(5)) == pytest.approx(0.0055, rel=1e-5)


def test_round_trip():
    schedule = PolyDecay(0.02, decay_steps=7, power=0.8)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, PolyDecay)
    assert float(restored(3)) == pytest.approx(float(schedule(3)))


def test_registered_as_poly_with_warmup():
    config = OptimizationConfig(
        learning_rate=LearningRateConfig(
            "poly", {"initial_learning_rate": 1, "decay_steps": 100}
        ),
        warmup=WarmupConfig(warmup_steps=10),
    )
    components.check_config(config, "opt")
    schedule = optimizer_factory.build_learning_rate(config)
    assert float(schedule(5)) == pytest.approx(0.5 * (0.9**0.9), rel=1e-5)
    assert float(schedule(50)) == pytest.approx(0.5**0.9, rel=1e-5)


def test_bad_decay_steps():
    with pytest.raises(ValueError, match="decay_steps"):
        PolyDecay(0.1, decay_steps=0)
