"""Builds the optimizer and learning-rate schedule of an `OptimizationConfig`.

Optimizers (registry `OPTIMIZERS`): sgd, adam, adamw, lamb, rmsprop, the
Keras 3 classes with fewer ops per update on TensorFlow
(`optimization/optimizers.py`: fused SGD momentum, one schedule evaluation
for weight decay). Schedules (registry `SCHEDULES`): constant,
stepwise (`PiecewiseConstantDecay`), cosine, polynomial, poly (`PolyDecay`:
power 0.9 to 0, as in DeepLab), exponential. The
registered constructor's signature is the schema of `params`.

The learning rate, decoupled weight decay and global gradient clipping have
their own config fields (`learning_rate`, `weight_decay`, `global_clipnorm`);
they are never optimizer `params`. Weight decay skips variables named
`bias`, `gamma` or `beta` (biases and normalization parameters).

Example:
```python
from official.modeling.optimization import optimizer_factory
from official.modeling.optimization.optimization_config import (
    OptimizationConfig)

config = OptimizationConfig()
config.override({
    "optimizer": {"type": "sgd", "params": {"momentum": 0.9}},
    "learning_rate": {"type": "cosine",
                      "params": {"initial_learning_rate": 0.1,
                                 "decay_steps": 1000}},
    "warmup": {"warmup_steps": 100},
    "weight_decay": 1e-4,
})
config.validate("trainer.optimizer_config")
optimizer = optimizer_factory.build_optimizer(config)
float(optimizer_factory.build_learning_rate(config)(50))  # -> ~0.05
```
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
from absl import logging

from official.base.registries import OPTIMIZERS, SCHEDULES
from official.modeling.optimization import components
from official.modeling.optimization.lr_schedules import LinearWarmup
from official.modeling.optimization.optimization_config import OptimizationConfig

# Variable names (`variable.name`, e.g. "bias" of "dense/bias") that weight
# decay skips: biases and the normalization layers' gamma and beta.
WEIGHT_DECAY_EXCLUDED_NAMES = ("bias", "gamma", "beta")


def build_learning_rate(
    config: OptimizationConfig,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Builds the learning-rate schedule, with linear warmup when configured.

    When `config.warmup.warmup_steps > 0` the schedule is wrapped in
    `LinearWarmup`: linear from `warmup_learning_rate` to the schedule's value
    at `warmup_steps`, then the schedule evaluated at the raw step (not
    shifted by the warmup; the TF Model Garden convention).

    Args:
        config: `OptimizationConfig`; its `learning_rate` and `warmup` are used.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule` that accepts an
        int or float step, eager or inside `tf.function`.
    """
    components.check_schedule(config, "")
    cls = SCHEDULES.get(config.learning_rate.type)
    schedule = cls(**components.as_floats(cls, config.learning_rate.params))
    warmup = config.warmup
    if warmup.warmup_steps > 0:
        schedule = LinearWarmup(
            schedule,
            warmup_steps=warmup.warmup_steps,
            warmup_learning_rate=warmup.warmup_learning_rate,
        )
    return schedule


def build_optimizer(
    config: OptimizationConfig,
    exclude_from_weight_decay: Sequence[str] = WEIGHT_DECAY_EXCLUDED_NAMES,
) -> keras.optimizers.Optimizer:
    """Builds the optimizer, its schedule, weight decay and clipping.

    Args:
        config: `OptimizationConfig` to build.
        exclude_from_weight_decay: sequence of str, variable names (the last
            component, `variable.name`, matched exactly) that weight decay
            skips. Defaults to `WEIGHT_DECAY_EXCLUDED_NAMES` (bias, gamma, beta).

    Returns:
        A `keras.optimizers.Optimizer`, not yet built.
    """
    components.check_config(config, "")
    cls = OPTIMIZERS.get(config.optimizer.type)
    optimizer = cls(
        learning_rate=build_learning_rate(config),
        weight_decay=config.weight_decay if config.weight_decay > 0 else None,
        global_clipnorm=config.global_clipnorm if config.global_clipnorm > 0 else None,
        **components.as_floats(cls, config.optimizer.params),
    )
    if config.weight_decay > 0 and exclude_from_weight_decay:
        # Keras searches these regexes in `variable.name` ("bias" for a Keras
        # variable, "dense/bias:0" for a raw tf.Variable); anchor them so that
        # e.g. "beta" does not match "beta_scale".
        names = "|".join(re.escape(n) for n in exclude_from_weight_decay)
        optimizer.exclude_from_weight_decay(var_names=[rf"(^|/)({names})(:\d+)?$"])
    return optimizer


# Schedule arguments that are learning rates (scaled with the batch size).
_RATE_ARGS = ("learning_rate", "initial_learning_rate", "end_learning_rate", "values")


def scale_learning_rate(
    config: OptimizationConfig, global_batch_size: int, log: bool = True
) -> OptimizationConfig:
    """A copy of `config` with its rates scaled by the linear batch-size rule.

    Rates are multiplied by `global_batch_size / config.reference_batch_size`;
    with `reference_batch_size` 0 the config is returned unchanged. The
    scaling is logged once when `log` is True (the trainer passes False when
    it only evaluates).

    Example:
    ```python
    from official.modeling.optimization import optimizer_factory
    from official.modeling.optimization.optimization_config import (
        LearningRateConfig, OptimizationConfig)
    cfg = OptimizationConfig(
        learning_rate=LearningRateConfig("constant", {"learning_rate": 1.6}),
        reference_batch_size=4096)
    scaled = optimizer_factory.scale_learning_rate(cfg, 256)
    assert scaled.learning_rate.params["learning_rate"] == 0.1
    ```
    """
    if (
        not config.reference_batch_size
        or global_batch_size == config.reference_batch_size
    ):
        return config
    factor = global_batch_size / config.reference_batch_size
    scaled = config.copy()
    params = scaled.learning_rate.params
    for key in _RATE_ARGS:
        if key in params:
            value = params[key]
            params[key] = (
                [v * factor for v in value]
                if isinstance(value, (list, tuple))
                else value * factor
            )
    scaled.warmup.warmup_learning_rate *= factor
    if not log:
        return scaled
    logging.info(
        "Learning rate scaled by %.4g (global batch %d / reference batch %d): %s. "
        "Set trainer.optimizer_config.reference_batch_size=0 to pin the rates.",
        factor,
        global_batch_size,
        config.reference_batch_size,
        {k: params[k] for k in _RATE_ARGS if k in params},
    )
    return scaled
