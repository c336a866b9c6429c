"""Contract checks shared by the tests of layers and models.

`run_layer_test` builds and calls a layer, checks its output shape, its
`get_config` round trip and a `.keras` save/load; `run_model_serialization_test`
does the last two for a model.

Example:
```python
import numpy as np
from official.modeling.layers import ConvNormAct
from official.testing.test_case import run_layer_test

run_layer_test(
    ConvNormAct,
    {"filters": 4, "strides": 2},
    np.ones((2, 8, 8, 3), "float32"),
    expected_output_shape=(2, 4, 4, 4),
)
```
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import keras
import numpy as np


def _config_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, indent=2, default=str)


def _shapes(structure: Any) -> Any:
    return keras.tree.map_structure(lambda t: tuple(t.shape), structure)


def _assert_outputs_close(expected: Any, actual: Any, atol: float = 1e-5) -> None:
    keras.tree.assert_same_structure(expected, actual)
    for e, a in zip(keras.tree.flatten(expected), keras.tree.flatten(actual)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(e),
            keras.ops.convert_to_numpy(a),
            atol=atol,
            rtol=1e-5,
        )


def run_serialization_test(instance: Any) -> None:
    """Checks `get_config → from_config → get_config` and the Keras serializer.

    Both round trips must reproduce the same JSON as the original config.
    """
    cls = type(instance)
    config = instance.get_config()
    expected = _config_json(config)
    revived = cls.from_config(json.loads(expected))
    actual = _config_json(revived.get_config())
    if actual != expected:
        raise AssertionError(
            f"{cls.__name__}: get_config → from_config → get_config changed the "
            f"config.\nBefore:\n{expected}\nAfter:\n{actual}"
        )
    serialized = json.dumps(keras.saving.serialize_keras_object(instance))
    revived = keras.saving.deserialize_keras_object(json.loads(serialized))
    if type(revived) is not cls:
        raise AssertionError(
            f"deserialize_keras_object returned {type(revived).__name__}, not "
            f"{cls.__name__}: is the class registered as serializable?"
        )
    actual = _config_json(revived.get_config())
    if actual != expected:
        raise AssertionError(
            f"{cls.__name__}: serialize → deserialize changed the config.\n"
            f"Before:\n{expected}\nAfter:\n{actual}"
        )


def run_saving_test(model: keras.Model, input_data: Any) -> keras.Model:
    """Saves `model` to a `.keras` file, loads it, compares inference outputs.

    Returns:
        The loaded model.
    """
    expected = model(input_data, training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    if type(loaded) is not type(model):
        raise AssertionError(
            f"load_model returned {type(loaded).__name__}, not {type(model).__name__}."
        )
    _assert_outputs_close(expected, loaded(input_data, training=False))
    return loaded


def run_layer_test(
    cls: type,
    init_kwargs: dict,
    input_data: Any,
    expected_output_shape: Any,
) -> keras.layers.Layer:
    """Checks the contract of a Keras layer class (R7, R16).

    Builds `cls(**init_kwargs)`, calls it on `input_data` in training and in
    inference mode, checks the output shape (a tuple, or a structure of
    tuples for layers with several outputs), checks that every `__init__`
    argument is a same-named attribute, runs `run_serialization_test` and
    saves/reloads the layer inside a functional model as a `.keras` file.

    Args:
        cls: the layer class.
        init_kwargs: dict, constructor arguments.
        input_data: numpy array (or structure of arrays) with a batch axis.
        expected_output_shape: tuple (or structure of tuples) with the batch
            size included.

    Returns:
        The layer that was called.
    """
    layer = cls(**init_kwargs)
    outputs = layer(input_data, training=True)
    if _shapes(outputs) != expected_output_shape:
        raise AssertionError(
            f"{cls.__name__}: output shape {_shapes(outputs)}, expected "
            f"{expected_output_shape}."
        )
    layer(input_data, training=False)
    for name in init_kwargs:
        if not hasattr(layer, name):
            raise AssertionError(
                f"{cls.__name__}: __init__ argument {name!r} has no same-named "
                "attribute."
            )
    config = layer.get_config()
    missing = sorted(set(init_kwargs) - set(config))
    if missing:
        raise AssertionError(f"{cls.__name__}.get_config() lacks {missing}.")
    run_serialization_test(layer)

    inputs = keras.tree.map_structure(
        lambda x: keras.Input(shape=np.shape(x)[1:], dtype=str(np.asarray(x).dtype)),
        input_data,
    )
    model = keras.Model(inputs, cls(**init_kwargs)(inputs))
    run_saving_test(model, input_data)
    return layer


def run_model_serialization_test(model: keras.Model, input_data: Any) -> keras.Model:
    """Checks a model's config round trip and its `.keras` save/load.

    Args:
        model: a built model whose class is registered as serializable.
        input_data: what the model is called on; outputs before and after
            the reload are compared in inference mode.

    Returns:
        The model loaded from the `.keras` file.
    """
    run_serialization_test(model)
    return run_saving_test(model, input_data)
