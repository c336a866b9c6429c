"""Activation arguments in `get_config`: names kept, functions serialized, once."""

import json
import os

import keras
import pytest

from official.modeling import layers
from official.modeling.layers.activations import serialize_activation

LAYERS_DIR = os.path.dirname(layers.__file__)


def test_names_and_none_are_kept_and_functions_serialized():
    assert serialize_activation("swish") == "swish"
    assert serialize_activation(None) is None
    config = serialize_activation(keras.activations.hard_sigmoid)
    assert keras.activations.deserialize(config) is keras.activations.hard_sigmoid


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (layers.ConvNormAct, {"filters": 4, "activation": keras.activations.swish}),
        (layers.SqueezeExcite, {"gate_activation": keras.activations.hard_sigmoid}),
        (
            layers.InvertedBottleneck,
            {"filters": 4, "se_ratio": 0.25, "se_activation": keras.activations.swish},
        ),
        (
            layers.FusedInvertedBottleneck,
            {"filters": 4, "activation": keras.activations.swish},
        ),
    ],
)
def test_a_function_activation_survives_the_config_round_trip(cls, kwargs):
    config = cls(**kwargs).get_config()
    json.dumps(config)
    restored = cls.from_config(config).get_config()
    assert restored == config


def test_one_serializer_in_the_layers():
    users = []
    for name in sorted(os.listdir(LAYERS_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(LAYERS_DIR, name), encoding="utf-8") as f:
                if "keras.activations.serialize(" in f.read():
                    users.append(name)
    assert users == ["activations.py"]
