"""Seeds for stateless random ops: resolve an optional seed, split it.

Example:
```python
import tensorflow as tf
from official.vision.dataloaders.augment import random_seeds

crop_seed, flip_seed = random_seeds.split(tf.constant([1, 2]), 2)
assert crop_seed.shape == (2,) and not bool(tf.reduce_all(crop_seed == flip_seed))
```
"""

from __future__ import annotations

import tensorflow as tf

_MAX_SEED = 2**31 - 1


def resolve(seed: tf.Tensor | None) -> tf.Tensor:
    """An int64 `[2]` seed: `seed` itself, or one drawn when it is None.

    Args:
        seed: an int32/int64 `[2]` tensor (or list), or None.

    Returns:
        The int64 `[2]` seed to hand to `tf.random.stateless_*` ops.
    """
    if seed is None:
        return tf.random.uniform([2], maxval=_MAX_SEED, dtype=tf.int64)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise TypeError(
            f"seed must be an integer [2] tensor. Received dtype {seed.dtype}."
        )
    return tf.cast(seed, tf.int64)


def split(seed: tf.Tensor | None, num: int) -> list[tf.Tensor]:
    """`num` independent int64 `[2]` seeds derived from `seed` (or a new one)."""
    return tf.unstack(tf.random.experimental.stateless_split(resolve(seed), num))


def uniform(seed: tf.Tensor, minval: float = 0.0, maxval: float = 1.0) -> tf.Tensor:
    """One float32 scalar drawn uniformly from `[minval, maxval)`."""
    return tf.random.stateless_uniform([], seed, minval=minval, maxval=maxval)
