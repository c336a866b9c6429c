"""Converting epochs to steps, the one place that does it.

Configs hold durations in steps; experiment factories convert epochs here.
"""

from __future__ import annotations

import math


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
    """Optimizer steps in one pass over `num_examples` (the last partial batch dropped)."""
    if num_examples <= 0 or global_batch_size <= 0:
        raise ValueError(
            f"num_examples and global_batch_size must be > 0. Received: "
            f"num_examples={num_examples}, global_batch_size={global_batch_size}."
        )
    return max(1, num_examples // global_batch_size)


def epochs_to_steps(epochs: float, num_examples: int, global_batch_size: int) -> int:
    """Steps in `epochs` passes over `num_examples` at `global_batch_size`.

    Example:
    ```python
    from official.core.durations import epochs_to_steps
    assert epochs_to_steps(2, num_examples=1000, global_batch_size=100) == 20
    ```
    """
    return int(math.ceil(epochs * steps_per_epoch(num_examples, global_batch_size)))
