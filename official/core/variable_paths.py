"""Stable, readable paths for a model's variables and a walk over its layers.

A path is the chain of sublayers from the model down to the variable, then
the variable's name: `backbone/block3/attention/query/kernel`. A sublayer
is named by the public attribute its parent holds it in (an
`ImageClassifier`'s `backbone` and `head`), else by its layer name (the
blocks of a functional backbone). Keras' own `variable.path` depends on the
name scope a layer was built in (a backbone built before its classifier has
no prefix), so patterns over it would not find `backbone/`.

Example:
```python
import keras
from official.core import variable_paths

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="head")])
list(variable_paths.variable_paths(model))  # -> ['head/kernel', 'head/bias']
```
"""

from __future__ import annotations

import keras


def _children(layer) -> list:
    # `_flatten_layers` is Keras' own walk over nested layers (as in summary()).
    return list(layer._flatten_layers(include_self=False, recursive=False))


def all_layers(model: keras.Model) -> list:
    """Every nested layer of `model` (not the model itself), each once."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def _child_names(layer) -> dict[int, str]:
    """`{id(child): name}`: the public attribute holding it, else its name."""
    attributes = {}
    for key, value in vars(layer).items():
        if not key.startswith("_") and isinstance(value, keras.layers.Layer):
            attributes.setdefault(id(value), key)
    return {id(c): attributes.get(id(c), c.name) for c in _children(layer)}


def variable_paths(model: keras.Model) -> dict[str, keras.Variable]:
    """`{path: variable}` for every variable of `model`, in `model.weights` order.

    A variable shared by several layers gets the path of the first one found
    (depth first). Two variables that would get the same path get `_1`, `_2`
    suffixes in order.
    """
    found: dict[int, str] = {}

    def walk(layer, prefix: str) -> None:
        names = _child_names(layer)
        inner = set()
        for child in _children(layer):
            walk(child, f"{prefix}{names[id(child)]}/")
            inner.update(id(v) for v in child.weights)
        for variable in layer.weights:
            if id(variable) not in inner and id(variable) not in found:
                found[id(variable)] = f"{prefix}{variable.name}"

    walk(model, "")
    out: dict[str, keras.Variable] = {}
    for variable in model.weights:
        path = found.get(id(variable), variable.name)
        unique, n = path, 0
        while unique in out:
            n += 1
            unique = f"{path}_{n}"
        out[unique] = variable
    return out


def path_of(model: keras.Model, variable) -> str:
    """The path of one of `model`'s variables (see `variable_paths`)."""
    for path, v in variable_paths(model).items():
        if v is variable:
            return path
    raise KeyError(f"{getattr(variable, 'name', variable)!r} is not a model variable.")
