"""Reads Keras weights, from a model or a file, as layer name -> weight arrays.

Three sources give the same structure, `{layer_name: [(weight_name, array),
...]}` with the weights in the layer's own order (kernel, bias; gamma, beta,
moving mean, moving variance):

- an in-memory `keras.Model` (names from its variables);
- a Keras 2 / tf.keras `.h5` weights file (root attribute `layer_names`, one
  group per layer with its `weight_names`), e.g. keras.applications'
  published ImageNet files, or a whole-model `.h5` (under `model_weights`).

A Keras 3 `.weights.h5` file (`model.save_weights`) names no layer: Keras
files each layer under its class name and position (`layers/conv2d_3/vars/0`),
so it is read by loading it into the keras.applications model it came from
(`is_keras3_weights_file`, then `keras.Model.load_weights` and
`weights_of_model`).
"""

from __future__ import annotations

import os

import h5py
import keras
import numpy as np

LayerWeights = dict[str, list[tuple[str | None, np.ndarray]]]


def weights_of_model(model: keras.Model) -> LayerWeights:
    """The weights of every layer of `model` that has any, in layer order."""
    out: LayerWeights = {}
    for layer in model.layers:
        if layer.weights:
            out[layer.name] = [(v.name, np.asarray(v.numpy())) for v in layer.weights]
    return out


def _legacy_h5(root: h5py.Group) -> LayerWeights:
    out: LayerWeights = {}
    for raw in root.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        group = root[name]
        weights = []
        for raw_weight in group.attrs.get("weight_names", []):
            weight = (
                raw_weight.decode() if isinstance(raw_weight, bytes) else raw_weight
            )
            weights.append((weight, np.asarray(group[weight])))
        if weights:
            out[name] = weights
    return out


def _open(path: str | os.PathLike) -> h5py.File:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file {path!r} does not exist.")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path!r} is not an HDF5 weights file: {e}.") from None


def is_keras3_weights_file(path: str | os.PathLike) -> bool:
    """Whether `path` was written by Keras 3 `save_weights` (a `layers` group).

    Raises:
        FileNotFoundError, ValueError: as `read_weights_file`.
    """
    with _open(path) as f:
        return "layers" in f and "layer_names" not in f.attrs


def classifier_units(path: str | os.PathLike) -> int | None:
    """Units of the file's classifier (keras.applications' only Dense layer,
    "predictions"), or None when the file has none (`include_top=False`)."""
    if not is_keras3_weights_file(path):
        predictions = read_weights_file(path).get("predictions")
        return int(predictions[0][1].shape[-1]) if predictions else None
    with _open(path) as f:
        dense = f["layers"].get("dense")
        vars_ = dense.get("vars") if dense is not None else None
        return int(vars_["0"].shape[-1]) if vars_ is not None and len(vars_) else None


def read_weights_file(path: str | os.PathLike) -> LayerWeights:
    """Reads a Keras 2 `.h5` weights file (or whole-model `.h5`) by layer name.

    Raises:
        FileNotFoundError: naming `path` when it does not exist.
        ValueError: when the file is not an HDF5 weights file of that layout
            (a Keras 3 `.weights.h5` included: it names no layers).
    """
    path = os.fspath(path)
    with _open(path) as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:
            return _legacy_h5(root)
    raise ValueError(
        f"{path!r} holds neither Keras 3 weights (a 'layers' group, as written "
        "by model.save_weights('x.weights.h5')) nor Keras 2 weights (a "
        "'layer_names' attribute)."
    )
