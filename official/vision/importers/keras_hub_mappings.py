"""Which keras-hub variable each Garden backbone variable takes, and when not.

For each supported keras-hub backbone, a `check_*` function refuses Garden
settings under which the outputs would differ (naming what to set), and a
`*_pairs` function walks the Garden backbone's layers and pairs each with the
keras-hub layer that plays the same part; the weights of two paired layers
are zipped in their own order, with their names checked. Garden variables
the source has no layer for are returned as missing, with the reason.
`keras_hub_vision.import_keras_hub_preset` turns this into a `RestoreReport`.
"""

from __future__ import annotations

import numpy as np

from official.vision.backbones.resnet import RESNET_SPECS, ResNet
from official.vision.backbones.vit import ViT
from official.vision.importers.restore_report import WeightImportError

# keras-hub's ResNetBackbone fixes its batch-norm epsilon (not in its config).
HUB_RESNET_NORM_EPSILON = 1e-5
RESNET_V2_REFUSAL = (
    "keras-hub's ResNetBackbone with use_pre_activation=True (ResNet v2) cannot "
    "be imported: it puts batch norm and relu before each convolution and adds "
    "a final batch norm, where Garden's ResNet normalizes after each "
    "convolution. Import a v1 preset (use_pre_activation=False)."
)
RESNET_VD_REFUSAL = (
    "keras-hub's ResNet vd blocks ({block_type}) cannot be imported: their "
    "stem is three convolutions with its first batch norm and relu between "
    "convolutions of other widths, and they average-pool before the projection "
    "shortcut with 'same' padding, which Garden's ResNet-D options "
    "(stem_type='deep', resnetd_shortcut) do not reproduce. Import a "
    "'basic_block' or 'bottleneck_block' preset."
)
_BLOCK_TYPES = {"basic_block": "ResidualBlock", "bottleneck_block": "BottleneckBlock"}


def zip_layers(garden_layer, source_layer) -> list:
    """(garden variable, source variable) for two layers of the same kind."""
    garden, source = list(garden_layer.weights), list(source_layer.weights)
    if [v.name for v in garden] != [v.name for v in source]:
        raise WeightImportError(
            f"Garden layer {garden_layer.name!r} holds "
            f"{[v.name for v in garden]}, keras-hub layer {source_layer.name!r} "
            f"holds {[v.name for v in source]}: the architectures differ."
        )
    return list(zip(garden, source))


def _refuse(what: str, problems: list[str]) -> None:
    if problems:
        raise WeightImportError(
            f"The keras-hub {what} does not match the Garden {what}: "
            + "; ".join(problems)
            + "."
        )


def check_vit(source, backbone) -> None:
    """Refuses ViT settings under which the outputs would differ."""
    if not isinstance(backbone, ViT):
        raise WeightImportError(
            "A keras-hub ViTBackbone imports into Garden's ViT backbone. "
            f"Received: {type(backbone).__name__}."
        )
    problems = []
    if source.data_format != "channels_last":
        problems.append(f"data_format={source.data_format!r} (Garden: channels_last)")
    patch = tuple(source.patch_size)
    garden_patch = ViT.resolve_architecture(backbone.get_config())["patch_size"]
    if patch != (garden_patch, garden_patch):
        problems.append(
            f"patch_size={list(patch)} (Garden: {garden_patch}; set backbone params "
            "patch_size, a square power of two)"
        )
    garden_shape = tuple(backbone.input_shape[1:])
    if tuple(source.image_shape) != garden_shape:
        problems.append(
            f"image_shape={tuple(source.image_shape)} (Garden input {garden_shape}; "
            "the position embedding has one entry per patch: set "
            "task.model.input_size)"
        )
    token = backbone.pooling == "token"
    if bool(source.use_class_token) != token:
        problems.append(
            f"use_class_token={source.use_class_token} (Garden pooling="
            f"{backbone.pooling!r}; use {'gap' if token else 'token'})"
        )
    for flag in ("use_mha_bias", "use_mlp_bias", "use_patch_bias"):
        if not getattr(source, flag):
            problems.append(f"{flag}=False (Garden's ViT has these biases)")
    if not np.isclose(
        source.layer_norm_epsilon, backbone.layer_norm_epsilon, rtol=1e-9
    ):
        problems.append(
            f"layer_norm_epsilon={source.layer_norm_epsilon!r} (Garden: "
            f"{backbone.layer_norm_epsilon!r}; set backbone params "
            f"layer_norm_epsilon={source.layer_norm_epsilon!r})"
        )
    if backbone.approximate_gelu:
        problems.append(
            "Garden's approximate_gelu=True (keras-hub runs exact GELU; import into "
            "approximate_gelu=False: the weights are the same)"
        )
    _refuse("ViT", problems)


def vit_pairs(source, backbone) -> tuple[list, list]:
    """(variable pairs, missing `(garden_path, reason)`) of a ViT."""
    embedding = source.get_layer("vit_patching_and_embedding")
    encoder = source.get_layer("vit_encoder")
    pairs = zip_layers(
        backbone.get_layer("patch_embedding").projection, embedding.patch_embedding
    )
    if backbone.pooling == "token":
        pairs.append((backbone.get_layer("class_token").token, embedding.class_token))
    pairs.append(
        (
            backbone.get_layer("position_embedding").embedding,
            embedding.position_embedding.embeddings,
        )
    )
    blocks = [layer for layer in backbone.layers if layer.name.startswith("block")]
    hub_blocks = encoder.encoder_layers
    missing = []
    for index, block in enumerate(blocks):
        if index >= len(hub_blocks):
            why = f"the source has {len(hub_blocks)} encoder blocks, not {block.name}"
            missing += [(v.path, why) for v in block.weights]
            continue
        hub = hub_blocks[index]
        for garden_layer, source_layer in (
            (block.attention_norm, hub.layer_norm_1),
            (block.attention, hub.mha),
            (block.mlp_norm, hub.layer_norm_2),
            (block.mlp_dense1, hub.mlp.dense_1),
            (block.mlp_dense2, hub.mlp.dense_2),
        ):
            pairs += zip_layers(garden_layer, source_layer)
    pairs += zip_layers(backbone.get_layer("encoder_norm"), encoder.layer_norm)
    return pairs, missing


def _resnet_model_id(block_type: str, blocks: list) -> int | None:
    for model_id, (block_cls, counts) in RESNET_SPECS.items():
        if block_cls.__name__ == _BLOCK_TYPES[block_type] and list(counts) == blocks:
            return model_id
    return None


def check_resnet(source, backbone) -> None:
    """Refuses keras-hub ResNet variants and Garden settings that differ."""
    if source.use_pre_activation:
        raise WeightImportError(RESNET_V2_REFUSAL)
    if source.block_type not in _BLOCK_TYPES:
        raise WeightImportError(RESNET_VD_REFUSAL.format(block_type=source.block_type))
    if not isinstance(backbone, ResNet):
        raise WeightImportError(
            "A keras-hub ResNetBackbone imports into Garden's ResNet backbone. "
            f"Received: {type(backbone).__name__}."
        )
    problems = []
    if source.data_format != "channels_last":
        problems.append(f"data_format={source.data_format!r} (Garden: channels_last)")
    blocks = list(source.stackwise_num_blocks)
    model_id = _resnet_model_id(source.block_type, blocks)
    if model_id is None:
        problems.append(
            f"{source.block_type} x {blocks} is no Garden ResNet depth (model_id "
            f"{', '.join(map(str, RESNET_SPECS))})"
        )
    elif model_id != backbone.model_id:
        problems.append(
            f"{source.block_type} x {blocks} is model_id={model_id} (Garden: "
            f"model_id={backbone.model_id})"
        )
    layout = (
        list(source.input_conv_filters),
        list(source.input_conv_kernel_sizes),
        list(source.stackwise_num_filters),
        list(source.stackwise_num_strides),
    )
    if layout != ([64], [7], [64, 128, 256, 512], [1, 2, 2, 2]):
        problems.append(
            f"stem {layout[0]} filters of kernel {layout[1]}, stack filters "
            f"{layout[2]}, strides {layout[3]} (Garden's ResNet: [64] of [7], "
            "[64, 128, 256, 512], [1, 2, 2, 2])"
        )
    expected = dict(
        padding="symmetric",
        width_multiplier=1.0,
        stem_type="v1",
        resnetd_shortcut=False,
        se_ratio=0.0,
        output_stride=32,
    )
    for key, value in expected.items():
        if getattr(backbone, key) != value:
            problems.append(
                f"Garden {key}={getattr(backbone, key)!r} (set {key}={value!r})"
            )
    if not np.isclose(backbone.norm_epsilon, HUB_RESNET_NORM_EPSILON, rtol=1e-9):
        problems.append(
            f"Garden norm_epsilon={backbone.norm_epsilon!r} (keras-hub's is "
            f"{HUB_RESNET_NORM_EPSILON}: set norm_epsilon=1e-5)"
        )
    _refuse("ResNet", problems)


def resnet_pairs(source, backbone) -> tuple[list, list]:
    """(variable pairs, missing `(garden_path, reason)`) of a ResNet v1."""
    hub_layers = {layer.name: layer for layer in source.layers}
    missing = []

    def conv_norm(garden_layer, prefix):
        found = [hub_layers.get(f"{prefix}_{kind}") for kind in ("conv", "bn")]
        if None in found:
            why = f"the source has no layer {prefix}_conv / {prefix}_bn"
            missing.extend((v.path, why) for v in garden_layer.weights)
            return []
        return zip_layers(garden_layer.conv, found[0]) + zip_layers(
            garden_layer.norm, found[1]
        )

    pairs = conv_norm(backbone.get_layer("stem_conv"), "conv1")
    for layer in backbone.layers:
        if not layer.name.startswith("level"):
            continue
        level, block = layer.name[len("level") :].split("_block")
        prefix = f"stack{int(level) - 2}_block{int(block) - 1}"
        convs = ["conv1", "conv2"] + (["conv3"] if hasattr(layer, "conv3") else [])
        for index, name in enumerate(convs, start=1):
            pairs += conv_norm(getattr(layer, name), f"{prefix}_{index}")
        if layer.shortcut is not None:
            pairs += conv_norm(layer.shortcut, f"{prefix}_0")
    return pairs, missing
