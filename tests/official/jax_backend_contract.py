"""The layer and backbone contract on the JAX backend, run as a script.

`tests/official/test_jax_backend.py` runs it in a subprocess with
`KERAS_BACKEND=jax` (the backend is fixed when Keras is first imported):
`python tests/official/jax_backend_contract.py [layers] [backbones]`. For
every layer in `official.modeling.layers` and every registered backbone, at a
tiny size: a forward pass computed by JAX, `get_config` -> `from_config` with
the same weights gives equal outputs, and a `.keras` save/load gives equal
outputs. Prints one `OK <name>` line per checked class and `JAX CONTRACT
PASSED` at the end; any failure raises.
"""

import os
import sys
import tempfile
import time

import keras
import numpy as np

import official.registry_imports  # noqa: F401  (registers every backbone)
from official.base.registries import BACKBONES
from official.modeling import layers

ATOL = 1e-5
RNG = np.random.default_rng(0)


def _images(size, channels=3, batch=2):
    return RNG.normal(size=(batch, size, size, channels)).astype("float32")


# Tiny constructor arguments and an input for every layer class.
LAYERS = {
    "ConvNormAct": ({"filters": 4, "strides": 2}, _images(8)),
    "ResidualBlock": ({"filters": 4, "strides": 2, "se_ratio": 0.25}, _images(8, 3)),
    "BottleneckBlock": (
        {
            "filters": 2,
            "strides": 2,
            "resnetd_shortcut": True,
            "stochastic_depth_rate": 0.1,
        },
        _images(8, 3),
    ),
    "InvertedBottleneck": (
        {
            "filters": 4,
            "expand_ratio": 2,
            "se_ratio": 0.25,
            "stochastic_depth_rate": 0.1,
        },
        _images(8, 4),
    ),
    "FusedInvertedBottleneck": (
        {"filters": 4, "expand_ratio": 2, "se_ratio": 0.25},
        _images(8, 4),
    ),
    "SqueezeExcite": ({"ratio": 0.25}, _images(4, 8)),
    "FusedBatchNormalization": ({"momentum": 0.9}, _images(4, 3)),
    "StochasticDepth": ({"rate": 0.2}, _images(4, 3)),
    "PatchEmbedding": ({"hidden_size": 8, "patch_size": 4}, _images(8)),
    "PositionEmbedding": ({}, RNG.normal(size=(2, 5, 8)).astype("float32")),
    "TransformerEncoderBlock": (
        {"num_heads": 2, "mlp_dim": 16},
        RNG.normal(size=(2, 5, 8)).astype("float32"),
    ),
}
BACKBONE_SIZE = 64
BACKBONES_TINY = {
    "resnet": {"model_id": 10, "width_multiplier": 0.25},
    "mobilenet": {"model_id": "MobileNetV3Small", "width_multiplier": 0.25},
    "efficientnet": {
        "model_id": "b0",
        "width_coefficient": 0.25,
        "depth_coefficient": 0.25,
        "stochastic_depth_rate": 0.2,
    },
    "vit": {
        "model_id": "ti16",
        "hidden_size": 16,
        "num_layers": 1,
        "num_heads": 2,
        "mlp_dim": 32,
    },
}


def _numpy(structure):
    return [
        np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(structure)
    ]


def _assert_jax(structure, what):
    import jax

    for tensor in keras.tree.flatten(structure):
        if not isinstance(tensor, jax.Array):
            raise AssertionError(
                f"{what}: output is {type(tensor).__name__}, not a jax.Array."
            )


def _assert_equal_outputs(expected, actual, what):
    expected, actual = _numpy(expected), _numpy(actual)
    if len(expected) != len(actual):
        raise AssertionError(
            f"{what}: {len(actual)} outputs, expected {len(expected)}."
        )
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, atol=ATOL, rtol=ATOL, err_msg=what)


def _check(name, build, inputs):
    """Forward pass, config round trip and `.keras` round trip of one object."""
    started = time.perf_counter()
    original = build()
    # The training path runs on JAX too (and moves batch-norm statistics,
    # so it goes first).
    _assert_jax(original(inputs, training=True), name)
    expected = original(inputs, training=False)
    _assert_jax(expected, name)

    revived = type(original).from_config(original.get_config())
    revived(inputs, training=False)  # builds the weights
    revived.set_weights(original.get_weights())
    _assert_equal_outputs(
        expected, revived(inputs, training=False), f"{name} from_config"
    )

    model = original
    if not isinstance(original, keras.Model):
        model_inputs = keras.Input(shape=inputs.shape[1:])
        model = keras.Model(model_inputs, original(model_inputs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    _assert_equal_outputs(expected, loaded(inputs, training=False), f"{name} .keras")
    print(f"OK {name} ({time.perf_counter() - started:.1f} s)", flush=True)


PARTS = ("layers", "backbones")


def main(argv):
    """Checks the parts named in `argv` (default: both)."""
    parts = argv or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"Unknown part(s) {unknown}. Valid: {', '.join(PARTS)}.")
    if keras.backend.backend() != "jax":
        raise SystemExit(
            f"Run with KERAS_BACKEND=jax; the backend is {keras.backend.backend()}."
        )
    classes = sorted(n for n in layers.__all__ if isinstance(getattr(layers, n), type))
    missing = [n for n in classes if n not in LAYERS]
    missing += [n for n in BACKBONES.names() if n not in BACKBONES_TINY]
    if missing:
        raise AssertionError(
            f"No tiny arguments for {missing}: add them to this script."
        )
    if "layers" in parts:
        for name in classes:
            kwargs, inputs = LAYERS[name]
            _check(name, lambda n=name, k=kwargs: getattr(layers, n)(**k), inputs)
    if "backbones" in parts:
        images = _images(BACKBONE_SIZE)
        for name in sorted(BACKBONES.names()):
            cls = BACKBONES.get(name)
            _check(
                f"backbone {name}",
                lambda c=cls, n=name: c(
                    input_shape=(BACKBONE_SIZE, BACKBONE_SIZE, 3),
                    **BACKBONES_TINY[n],
                ),
                images,
            )
    print("JAX CONTRACT PASSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
