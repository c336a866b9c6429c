"""Stochastic depth: drops a residual branch per example during training."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="official")
class StochasticDepth(keras.layers.Layer):
    """Drops its input (a residual branch) per example with probability `rate`.

    Apply it to the residual branch before the addition:
    `x = shortcut + StochasticDepth(rate)(branch)` (Huang et al. 2016). In
    training, each example's branch is zeroed with probability `rate` and
    kept branches are scaled by `1 / (1 - rate)`, so the expected output is
    unchanged; at inference the layer is the identity.

    Args:
        rate: float in [0, 1), probability of dropping an example's branch.
            Defaults to 0.0 (the identity).
        seed: int or None, seed of the random drop decisions. Defaults to
            None.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: float tensor of shape `(batch, ...)`.
        training: bool, whether branches are dropped.

    Returns:
        Tensor of the input's shape.

    Example:
    ```python
    import numpy as np
    from official.modeling.layers import StochasticDepth

    layer = StochasticDepth(rate=0.5, seed=1)
    x = np.ones((8, 4, 4, 2), "float32")
    assert np.array_equal(np.asarray(layer(x)), x)  # inference: identity
    y = np.asarray(layer(x, training=True))
    assert set(np.unique(y)) <= {0.0, 2.0}  # per example: dropped or x / 0.5
    ```
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate!r}.")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        shape = (keras.ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(
            shape, dtype=inputs.dtype, seed=self.seed_generator
        )
        mask = keras.ops.floor(keep + noise)
        return inputs * (mask / keep)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
