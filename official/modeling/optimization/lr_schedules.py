"""Learning-rate schedules that Keras does not provide: constant, warmup, poly.

All are serializable (`get_config` / `from_config`) and accept an int or
float step, eager or inside `tf.function`.

Example:
```python
import keras
from official.modeling.optimization.lr_schedules import (
    ConstantLearningRate, LinearWarmup, PolyDecay)

after = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
schedule = LinearWarmup(after, warmup_steps=10, warmup_learning_rate=0.0)
float(schedule(5))   # -> 0.5 * after(10), halfway up the ramp
float(schedule(50))  # -> after(50), the raw step (not 50 - 10)
float(ConstantLearningRate(0.01)(123))  # -> 0.01
float(PolyDecay(0.01, decay_steps=100)(50))  # -> 0.01 * 0.5 ** 0.9
```
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="official")
class ConstantLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The same learning rate at every step.

    Args:
        learning_rate: float, the learning rate.
        name: str, name of the schedule. Defaults to "Constant".

    Call arguments:
        step: int or float scalar (tensor), the optimizer step; ignored.

    Returns:
        A float32 scalar tensor.

    Example:
    ```python
    from official.modeling.optimization.lr_schedules import ConstantLearningRate
    float(ConstantLearningRate(learning_rate=0.01)(7))  # -> 0.01
    ```
    """

    def __init__(self, learning_rate: float, name: str = "Constant"):
        super().__init__()
        self.learning_rate = learning_rate
        self.name = name

    def __call__(self, step):
        del step  # Unused.
        return ops.convert_to_tensor(float(self.learning_rate), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "name": self.name}


@keras.saving.register_keras_serializable(package="official")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup in front of another schedule.

    For `step < warmup_steps` the rate goes linearly from
    `warmup_learning_rate` (at step 0) towards `after_warmup(warmup_steps)`;
    from `warmup_steps` on it is `after_warmup(step)`. The wrapped schedule is
    evaluated at the raw step, not at `step - warmup_steps` (the TF Model
    Garden convention): a cosine decay over `decay_steps` therefore ends at
    `decay_steps` whatever the warmup, and its first `warmup_steps` steps are
    replaced by the ramp.

    Args:
        after_warmup: `keras.optimizers.schedules.LearningRateSchedule`, the
            schedule used once warmup is over.
        warmup_steps: int > 0, length of the warmup in steps.
        warmup_learning_rate: float, the learning rate at step 0. Defaults to
            0.0.
        name: str, name of the schedule. Defaults to "LinearWarmup".

    Call arguments:
        step: int or float scalar (tensor), the optimizer step.

    Returns:
        A float32 scalar tensor.

    Example:
    ```python
    from official.modeling.optimization.lr_schedules import (
        ConstantLearningRate, LinearWarmup)
    schedule = LinearWarmup(ConstantLearningRate(1.0), warmup_steps=4)
    [float(schedule(s)) for s in (0, 2, 4, 9)]  # -> [0.0, 0.5, 1.0, 1.0]
    ```
    """

    def __init__(
        self,
        after_warmup: keras.optimizers.schedules.LearningRateSchedule,
        warmup_steps: int,
        warmup_learning_rate: float = 0.0,
        name: str = "LinearWarmup",
    ):
        super().__init__()
        if not isinstance(warmup_steps, int) or warmup_steps <= 0:
            raise ValueError(
                f"`warmup_steps` must be an int > 0. Received: "
                f"warmup_steps={warmup_steps!r}."
            )
        self.after_warmup = after_warmup
        self.warmup_steps = warmup_steps
        self.warmup_learning_rate = warmup_learning_rate
        self.name = name

    def __call__(self, step):
        # The wrapped schedule sees the step as given (int or float).
        after = ops.cast(self.after_warmup(step), "float32")
        step = ops.cast(ops.convert_to_tensor(step), "float32")
        warmup_steps = float(self.warmup_steps)
        start = float(self.warmup_learning_rate)
        end = ops.cast(self.after_warmup(self.warmup_steps), "float32")
        ramp = start + (end - start) * (step / warmup_steps)
        return ops.where(step < warmup_steps, ramp, after)

    def get_config(self) -> dict[str, Any]:
        return {
            "after_warmup": keras.optimizers.schedules.serialize(self.after_warmup),
            "warmup_steps": self.warmup_steps,
            "warmup_learning_rate": self.warmup_learning_rate,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LinearWarmup:
        config = dict(config)
        config["after_warmup"] = keras.optimizers.schedules.deserialize(
            config["after_warmup"]
        )
        return cls(**config)


@keras.saving.register_keras_serializable(package="official")
class PolyDecay(keras.optimizers.schedules.PolynomialDecay):
    """The "poly" schedule of DeepLab, PSPNet and EncNet.

    `(initial_learning_rate - end_learning_rate) * (1 - step / decay_steps)
    ** power + end_learning_rate`, held at `end_learning_rate` after
    `decay_steps`. Keras' `PolynomialDecay` with the segmentation defaults:
    power 0.9 and an end rate of 0 (Keras': 1.0 and 1e-4).

    Args:
        initial_learning_rate: float, the rate at step 0.
        decay_steps: int > 0, steps to reach `end_learning_rate` (usually
            the training steps).
        power: float, the exponent. Defaults to 0.9.
        end_learning_rate: float. Defaults to 0.0.
        name: str. Defaults to "PolyDecay".

    Call arguments:
        step: int or float scalar (tensor), the optimizer step.

    Returns:
        A float32 scalar tensor.

    Example:
    ```python
    from official.modeling.optimization.lr_schedules import PolyDecay
    schedule = PolyDecay(0.01, decay_steps=100)
    [round(float(schedule(s)), 6) for s in (0, 100, 200)]  # -> [0.01, 0.0, 0.0]
    ```
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        power: float = 0.9,
        end_learning_rate: float = 0.0,
        name: str = "PolyDecay",
    ):
        if not isinstance(decay_steps, int) or decay_steps <= 0:
            raise ValueError(
                f"`decay_steps` must be an int > 0. Received: decay_steps={decay_steps!r}."
            )
        super().__init__(
            initial_learning_rate,
            decay_steps,
            end_learning_rate=end_learning_rate,
            power=power,
            cycle=False,
            name=name,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
            "end_learning_rate": self.end_learning_rate,
            "name": self.name,
        }
