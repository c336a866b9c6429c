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

import inspect
import re
from typing import Any, Callable, Sequence

import keras
from absl import logging

from official.core.params_check import check_params, check_required_params
from official.core.registries import OPTIMIZERS, SCHEDULES
from official.modeling.optimization import optimizers
from official.modeling.optimization.lr_schedules import (
    ConstantLearningRate,
    LinearWarmup,
    PolyDecay,
)
from official.modeling.optimization.optimization_config import OptimizationConfig

OPTIMIZERS.register("sgd")(optimizers.SGD)
OPTIMIZERS.register("adam")(optimizers.Adam)
OPTIMIZERS.register("adamw")(optimizers.AdamW)
OPTIMIZERS.register("lamb")(optimizers.Lamb)
OPTIMIZERS.register("rmsprop")(optimizers.RMSprop)

SCHEDULES.register("constant")(ConstantLearningRate)
SCHEDULES.register("stepwise")(keras.optimizers.schedules.PiecewiseConstantDecay)
SCHEDULES.register("cosine")(keras.optimizers.schedules.CosineDecay)
SCHEDULES.register("polynomial")(keras.optimizers.schedules.PolynomialDecay)
SCHEDULES.register("poly")(PolyDecay)
SCHEDULES.register("exponential")(keras.optimizers.schedules.ExponentialDecay)

# Variable names (`variable.name`, e.g. "bias" of "dense/bias") that weight
# decay skips: biases and the normalization layers' gamma and beta.
WEIGHT_DECAY_EXCLUDED_NAMES = ("bias", "gamma", "beta")

# Optimizer arguments set from their own `OptimizationConfig` field.
_OPTIMIZER_RESERVED = ("learning_rate", "weight_decay", "global_clipnorm")
# Keras optimizer arguments whose job the trainer does, and the key to use.
_TRAINER_OWNED = {
    "use_ema": "trainer.ema_decay",
    "ema_momentum": "trainer.ema_decay",
    "ema_overwrite_frequency": "trainer.ema_decay",
    "loss_scale_factor": "runtime.mixed_precision_dtype",
    # Keras evaluates the schedule per accumulated batch, not per update.
    "gradient_accumulation_steps": "trainer.optimizer_config.gradient_accumulation_steps",
}
# Schedule arguments (CosineDecay's own warmup) replaced by `warmup`.
_SCHEDULE_RESERVED = ("warmup_steps", "warmup_target")
# Required float arguments that YAML may give as ints ("values: [1, 0.1]").
_FLOAT_ARGS = ("initial_learning_rate", "learning_rate", "decay_rate", "values")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _lookup(registry, name: str, where: str) -> Any:
    try:
        return registry.get(name)
    except KeyError as e:
        raise KeyError(f"{where}: {e.args[0]}") from None


def _check_optimizer(config: OptimizationConfig, where: str) -> None:
    opt = config.optimizer
    params_where = _join(where, "optimizer.params")
    cls = _lookup(OPTIMIZERS, opt.type, _join(where, "optimizer.type"))
    for key in _OPTIMIZER_RESERVED:
        if key in opt.params:
            raise KeyError(
                f"Config key '{params_where}.{key}' is not allowed: the optimizer's "
                f"{key} is set from '{_join(where, key)}'. Received: "
                f"{key}={opt.params[key]!r}."
            )
    for key, use in _TRAINER_OWNED.items():
        if key in opt.params:
            raise KeyError(
                f"Config key '{params_where}.{key}' is not allowed: the trainer "
                f"handles it; set '{use}' instead. Received: {key}={opt.params[key]!r}."
            )
    check_params(
        cls, opt.params, params_where, reserved=_OPTIMIZER_RESERVED + tuple(_TRAINER_OWNED)
    )
    for key in ("weight_decay", "global_clipnorm"):
        value = getattr(config, key)
        if value < 0:
            raise ValueError(f"{_join(where, key)} must be >= 0. Received: {value}.")
    clipping = [k for k in ("clipnorm", "clipvalue") if opt.params.get(k) is not None]
    if config.global_clipnorm > 0 and clipping:
        raise ValueError(
            f"Set only one of '{_join(where, 'global_clipnorm')}' and "
            f"'{params_where}.{clipping[0]}'. Received: global_clipnorm="
            f"{config.global_clipnorm}, {clipping[0]}={opt.params[clipping[0]]!r}."
        )
    if opt.type == "adamw" and config.weight_decay <= 0:
        raise ValueError(
            f"{_join(where, 'weight_decay')} must be > 0 for optimizer 'adamw' "
            f"(decoupled weight decay is what distinguishes it from 'adam'). "
            f"Received: {config.weight_decay}."
        )


def _check_schedule(config: OptimizationConfig, where: str) -> None:
    lr = config.learning_rate
    params_where = _join(where, "learning_rate.params")
    cls = _lookup(SCHEDULES, lr.type, _join(where, "learning_rate.type"))
    for key in _SCHEDULE_RESERVED:
        if key in lr.params:
            raise KeyError(
                f"Config key '{params_where}.{key}' is not allowed: warmup is set "
                f"from '{_join(where, 'warmup')}'. Received: {key}="
                f"{lr.params[key]!r}."
            )
    check_params(cls, lr.params, params_where, reserved=_SCHEDULE_RESERVED)
    check_required_params(cls, lr.params, params_where, reserved=_SCHEDULE_RESERVED)
    try:
        cls(**_as_floats(cls, lr.params))
    except (TypeError, ValueError) as e:
        raise type(e)(f"{params_where}: {e}") from None


def check_config(config: OptimizationConfig, where: str) -> None:
    """Checks the optimizer and schedule types and params of `config`.

    Called by `OptimizationConfig.validate`, so bad values fail when the
    config loads.

    Args:
        config: `OptimizationConfig` to check.
        where: str, dotted path of `config` (e.g. "trainer.optimizer_config"),
            prefixed to every error message.

    Raises:
        KeyError: an unknown optimizer or schedule type (naming the closest
            registered one), an unknown, reserved or missing params key.
        ValueError: a negative `weight_decay` or `global_clipnorm`, clipping
            set twice, 'adamw' without weight decay, or schedule params that
            the schedule rejects.
        TypeError: params that do not bind to the constructor's signature.
    """
    _check_optimizer(config, where)
    _check_schedule(config, where)


def _as_floats(fn: Callable[..., Any], params: dict) -> dict:
    """Converts int params to float where `fn` expects floats.

    An argument expects a float when its default is a float or when it is
    one of `_FLOAT_ARGS`; YAML reads `1` as an int, which would otherwise
    make Keras compute the schedule in integers.
    """
    signature = inspect.signature(fn).parameters
    out = dict(params)
    for key, value in params.items():
        p = signature.get(key)
        wants_float = key in _FLOAT_ARGS or (
            p is not None and isinstance(p.default, float)
        )
        if not wants_float:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, (list, tuple)):
            out[key] = [
                float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                for v in value
            ]
    return out


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
    _check_schedule(config, "")
    cls = SCHEDULES.get(config.learning_rate.type)
    schedule = cls(**_as_floats(cls, config.learning_rate.params))
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
    check_config(config, "")
    cls = OPTIMIZERS.get(config.optimizer.type)
    optimizer = cls(
        learning_rate=build_learning_rate(config),
        weight_decay=config.weight_decay if config.weight_decay > 0 else None,
        global_clipnorm=config.global_clipnorm if config.global_clipnorm > 0 else None,
        **_as_floats(cls, config.optimizer.params),
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
    config: OptimizationConfig, global_batch_size: int
) -> OptimizationConfig:
    """A copy of `config` with its rates scaled by the linear batch-size rule.

    Rates are multiplied by `global_batch_size / config.reference_batch_size`;
    with `reference_batch_size` 0 the config is returned unchanged. The
    scaling is logged once.

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
    if not config.reference_batch_size or global_batch_size == config.reference_batch_size:
        return config
    factor = global_batch_size / config.reference_batch_size
    scaled = config.copy()
    params = scaled.learning_rate.params
    for key in _RATE_ARGS:
        if key in params:
            value = params[key]
            params[key] = (
                [v * factor for v in value] if isinstance(value, (list, tuple)) else value * factor
            )
    scaled.warmup.warmup_learning_rate *= factor
    logging.info(
        "Learning rate scaled by %.4g (global batch %d / reference batch %d): %s. "
        "Set trainer.optimizer_config.reference_batch_size=0 to pin the rates.",
        factor, global_batch_size, config.reference_batch_size,
        {k: params[k] for k in _RATE_ARGS if k in params},
    )
    return scaled
