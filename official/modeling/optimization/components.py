"""The registered optimizers and schedules, and the checks of their params.

`OptimizationConfig.validate` calls `check_config`; `optimizer_factory`
builds from the same registries. The registered constructor's signature is
the schema of `params`.

Example:
```python
from official.modeling.optimization import components
from official.modeling.optimization.optimization_config import OptimizationConfig

config = OptimizationConfig()
config.optimizer.params = {"momentun": 0.9}
try:
    components.check_config(config, "trainer.optimizer_config")
except KeyError as e:
    assert "Did you mean 'momentum'?" in str(e)
```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras

from official.base.params_check import check_params, check_required_params
from official.base.registries import OPTIMIZERS, SCHEDULES
from official.modeling.optimization import optimizers
from official.modeling.optimization.lr_schedules import ConstantLearningRate, PolyDecay

if TYPE_CHECKING:
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
        cls,
        opt.params,
        params_where,
        reserved=_OPTIMIZER_RESERVED + tuple(_TRAINER_OWNED),
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


def check_schedule(config: OptimizationConfig, where: str) -> None:
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
        cls(**as_floats(cls, lr.params))
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
    check_schedule(config, where)


def as_floats(fn: Callable[..., Any], params: dict) -> dict:
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
