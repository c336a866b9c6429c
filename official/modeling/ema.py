"""An exponential moving average of a model's trainable weights.

The averages are checkpointed under the key `ema` beside the model, so that
evaluation and export can use them.

Example:
```python
import keras
import numpy as np
from official.modeling.ema import ExponentialMovingAverage

model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
ema = ExponentialMovingAverage(model.trainable_variables, decay=0.5)
model.trainable_variables[0].assign(np.ones((2, 1)))
ema.update()
with ema.swapped():
    pass  # the model holds the averages here
```
"""

from __future__ import annotations

import contextlib

import tensorflow as tf


class ExponentialMovingAverage(tf.Module):
    """Keeps `average = decay * average + (1 - decay) * variable`.

    Args:
        variables: the variables to average (the model's trainable ones).
        decay: float in [0, 1), the weight of the old average.
    """

    def __init__(self, variables, decay: float):
        super().__init__(name="ema")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1). Received: decay={decay}.")
        self.decay = decay
        variables = list(variables)
        # A function, so that the module does not track (and checkpoint) the
        # model's variables a second time.
        self._variables_fn = lambda: variables
        self.averages = [
            tf.Variable(
                tf.convert_to_tensor(v),
                trainable=False,
                name=f"ema_{i}",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            for i, v in enumerate(variables)
        ]

    def update(self) -> None:
        for average, variable in zip(self.averages, self._variables_fn()):
            average.assign(
                self.decay * average
                + (1.0 - self.decay) * tf.cast(variable, average.dtype)
            )

    def copy_to_variables(self) -> None:
        """Overwrites the variables with their averages."""
        for average, variable in zip(self.averages, self._variables_fn()):
            variable.assign(tf.cast(average, variable.dtype))

    @contextlib.contextmanager
    def swapped(self):
        """The variables hold the averages inside the block, their own values after."""
        saved = [tf.identity(v) for v in self._variables_fn()]
        self.copy_to_variables()
        try:
            yield
        finally:
            for value, variable in zip(saved, self._variables_fn()):
                variable.assign(value)
