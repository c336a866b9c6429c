"""Rounding channel counts to a multiple of a divisor (MobileNet, EfficientNet).

Example:
```python
from official.modeling.layers.channel_rounding import make_divisible

assert make_divisible(72 * 0.25, 8) == 24  # 16 would lose more than 10 %
assert make_divisible(32 * 1.1, 8) == 32
assert make_divisible(12.4, 1) == 12
```
"""

from __future__ import annotations


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """`value` rounded to the nearest multiple of `divisor`, losing at most 10 %.

    The rule of the MobileNet and EfficientNet reference code: round to the
    nearest multiple (halves up), at least `min_value` (default `divisor`),
    and add one `divisor` when rounding down lost more than 10 % of `value`.

    Args:
        value: float, the unrounded number of channels.
        divisor: int >= 1, the result is a multiple of it.
        min_value: int or None, the smallest result. Defaults to `divisor`.

    Returns:
        int, the rounded number of channels.
    """
    if divisor < 1:
        raise ValueError(f"`divisor` must be >= 1. Received: divisor={divisor!r}.")
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)
