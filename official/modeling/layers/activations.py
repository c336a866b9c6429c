"""`get_config` values of activation arguments.

Example:
```python
import keras
from official.modeling.layers.activations import serialize_activation

assert serialize_activation("relu") == "relu"
assert serialize_activation(None) is None
config = serialize_activation(keras.activations.gelu)
assert keras.activations.deserialize(config) is keras.activations.gelu
```
"""

from __future__ import annotations

from typing import Any

import keras


def serialize_activation(activation: Any) -> Any:
    """A name or None as given; a function as `keras.activations.serialize`."""
    if activation is None or isinstance(activation, str):
        return activation
    return keras.activations.serialize(activation)
