"""Parameters and FLOPs of a registered backbone or an experiment's model.

Examples:
    python tools/model_summary.py --backbone=resnet --params='{"model_id": 50}' \\
      --input_size=224
    python tools/model_summary.py --backbone=vit --params='{"model_id": "s16"}'
    python tools/model_summary.py --experiment=resnet_imagenet
    python tools/model_summary.py --experiment=resnet_digits \\
      --params_override=task.model.backbone.params.width_multiplier=0.5
    python tools/model_summary.py --experiment=bert_sentence_prediction \\
      --params_override=task.preprocessing.vocab_file=vocab.txt

A text experiment's model is counted at its packed length
(`task.preprocessing.seq_length`) with the three int32 inputs; it needs its
vocabulary file, whose size sets the word embedding.

FLOPs are counted per image (batch 1, inference mode) from the graph of the
model's traced call: 2 x the multiply-adds of every Conv2D, Conv3D,
DepthwiseConv2dNative, Conv2DBackpropInput (transposed convolution), MatMul,
BatchMatMul and Einsum, read from the static shapes of their inputs and
outputs. Element-wise ops (normalization, activations, additions, pooling,
softmax) are not counted: the usual convention, under which ResNet-50 at
224 px has 4.1 G multiply-adds.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

# Flags live in their own FlagValues, so that importing this module (tests)
# never clashes with the flags of official.train in the same process.
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "backbone",
    None,
    "A registered backbone name (e.g. resnet, vit).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "params",
    "{}",
    "The backbone's constructor arguments as a YAML/JSON mapping, "
    "e.g. '{\"model_id\": 50}'.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "input_size",
    None,
    "Square input side in pixels. Backbones: defaults to 224. Experiments: "
    "replaces the height and width of task.model.input_size.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "input_channels", 3, "Input channels of a --backbone.", flag_values=FLAGS
)
flags.DEFINE_string(
    "experiment", None, "A registered experiment name.", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "config_file",
    [],
    "YAML file applied to the experiment (repeatable).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "params_override",
    "",
    "Comma-separated dotted.key=value overrides of the experiment config.",
    flag_values=FLAGS,
)

# Ops whose multiply-adds are counted.
COUNTED_OPS = (
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2dNative",
    "Conv2DBackpropInput",
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Einsum",
)
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def _dims(shape, what: str) -> list[int]:
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        raise ValueError(
            f"Cannot count FLOPs: {what} has a dynamic shape {shape}. Give the "
            "model a static input size."
        )
    return dims


def _numel(shape, what: str) -> int:
    n = 1
    for d in _dims(shape, what):
        n *= d
    return n


def _einsum_macs(op) -> int:
    """Product of the sizes of every index in the equation."""
    equation = op.get_attr("equation").decode().replace(" ", "")
    lhs = equation.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for i, (term, tensor) in enumerate(zip(lhs, op.inputs)):
        dims = _dims(tensor.shape, f"{op.name} input {i}")
        if "..." in term:
            # Broadcast axes are right-aligned across operands: name them by
            # their distance from the right, with characters no equation uses.
            head, tail = term.split("...")
            n = len(dims) - len(head) - len(tail)
            term = head + "".join(chr(0x100 + n - 1 - j) for j in range(n)) + tail
        for index, size in zip(term, dims):
            sizes[index] = max(sizes.get(index, 1), size)
    macs = 1
    for size in sizes.values():
        macs *= size
    return macs


def op_macs(op) -> int:
    """Multiply-adds of one graph op; 0 for ops that are not counted."""
    kind = op.type
    if kind in ("Conv2D", "Conv3D"):
        kernel = _dims(op.inputs[1].shape, f"{op.name} kernel")
        per_output = 1
        for d in kernel[:-1]:
            per_output *= d
        return _numel(op.outputs[0].shape, op.name) * per_output
    if kind == "DepthwiseConv2dNative":
        kh, kw = _dims(op.inputs[1].shape, f"{op.name} kernel")[:2]
        return _numel(op.outputs[0].shape, op.name) * kh * kw
    if kind == "Conv2DBackpropInput":
        kh, kw, out_channels, _ = _dims(op.inputs[1].shape, f"{op.name} kernel")
        return _numel(op.inputs[2].shape, op.name) * kh * kw * out_channels
    if kind == "MatMul":
        a = _dims(op.inputs[0].shape, f"{op.name} input 0")
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        return _numel(op.outputs[0].shape, op.name) * inner
    if kind.startswith("BatchMatMul"):
        a = _dims(op.inputs[0].shape, f"{op.name} input 0")
        inner = a[-2] if op.get_attr("adj_x") else a[-1]
        return _numel(op.outputs[0].shape, op.name) * inner
    if kind == "Einsum":
        return _einsum_macs(op)
    return 0


# The packed inputs of a text model (BERT-style encoders), int32 [1, length].
TOKEN_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def _input_spec(input_shape):
    """A float32 image spec for `(h, w, c)`; int32 token specs for `("tokens", n)`."""
    import tensorflow as tf

    if input_shape and input_shape[0] == "tokens":
        return {
            name: tf.TensorSpec((1, input_shape[1]), tf.int32, name=name)
            for name in TOKEN_INPUTS
        }
    return tf.TensorSpec((1, *input_shape), tf.float32)


def _graph_of(model, input_shape: tuple):
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    spec = _input_spec(tuple(input_shape))
    call = tf.function(lambda x: model(x, training=False), autograph=False)
    concrete = call.get_concrete_function(spec)
    graph = concrete.graph
    if any(op.type in _CALL_OPS for op in graph.get_operations()):
        # Nested functions: freezing inlines them into one graph.
        frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
        graph = frozen.graph
    return graph


def count_flops(model, input_shape: tuple) -> int:
    """FLOPs (2 x multiply-adds) of one inference call on one example.

    Args:
        model: a Keras model (or any callable taking `training=`).
        input_shape: tuple `(height, width, channels)` without the batch, or
            `("tokens", length)` for a text model taking the three packed
            int32 inputs (`TOKEN_INPUTS`) as a dict.

    Returns:
        int, FLOPs per example.
    """
    graph = _graph_of(model, tuple(input_shape))
    return 2 * sum(op_macs(op) for op in graph.get_operations())


def summarize(model, input_shape: tuple) -> dict:
    """Parameter counts and FLOPs of `model` at `input_shape`.

    Returns:
        dict with `trainable_params`, `non_trainable_params`, `total_params`,
        `flops` (per image) and `input_shape`.
    """
    import numpy as np

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {
        "input_shape": tuple(input_shape),
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "total_params": trainable + non_trainable,
        "flops": count_flops(model, input_shape),
    }


def build_backbone(name: str, params: dict, input_shape: tuple):
    """A registered backbone built at `input_shape`."""
    import official.registry_imports  # noqa: F401
    from official.base.params_check import check_params
    from official.base.registries import BACKBONES

    cls = BACKBONES.get(name)
    check_params(cls, params, "--params", reserved=("input_shape",))
    validate = getattr(cls, "validate_params", None)
    if validate is not None:
        validate(params, input_shape, "--params")
    return cls(input_shape=input_shape, **params)


def build_experiment_model(
    experiment: str,
    config_files: list[str] = (),
    params_override: str = "",
    input_size: int | None = None,
):
    """The model of an experiment (after config files and overrides).

    Returns:
        `(model, input_shape)`.
    """
    import official.registry_imports  # noqa: F401
    from official.core import task_factory
    from official.core.config_loader import load_experiment_config

    overrides = params_override
    if input_size is not None:
        from official.core import exp_factory

        channels = exp_factory.get_exp_config(experiment).task.model.input_size[-1]
        size = f"task.model.input_size=[{input_size},{input_size},{channels}]"
        overrides = f"{overrides},{size}" if overrides else size
    config = load_experiment_config(experiment, list(config_files), overrides)
    model = task_factory.get_task(config.task).build_model()
    if hasattr(config.task.model, "input_size"):
        return model, tuple(config.task.model.input_size)
    preprocessing = getattr(config.task, "preprocessing", None)
    if preprocessing is not None and hasattr(preprocessing, "seq_length"):
        return model, ("tokens", preprocessing.seq_length)
    raise ValueError(
        f"Experiment {experiment!r} has a {type(config.task).__name__}, whose "
        "model takes neither images (task.model.input_size) nor packed tokens "
        "(task.preprocessing.seq_length): model_summary cannot build its input."
    )


def format_summary(title: str, summary: dict) -> str:
    """Human-readable lines of a `summarize` result."""
    flops = summary["flops"]
    shape = summary["input_shape"]
    if shape and shape[0] == "tokens":
        where, unit = f"{shape[1]} tokens", "example"
    else:
        where, unit = "x".join(str(d) for d in shape), "image"
    return "\n".join(
        [
            f"{title} at {where}",
            f"trainable parameters:     {summary['trainable_params']:>15,}",
            f"non-trainable parameters: {summary['non_trainable_params']:>15,}",
            f"total parameters:         {summary['total_params']:>15,}",
            f"FLOPs per {unit + ':':<16}{flops:>15,} ({flops / 1e9:.2f} G; "
            f"{flops / 2e9:.2f} G multiply-adds)",
        ]
    )


def _parse_params(text: str) -> dict:
    import yaml

    try:
        params = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        raise ValueError(f"--params is not a YAML/JSON mapping: {e}") from None
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(
            f"--params must be a mapping such as '{{\"model_id\": 50}}'. "
            f"Received: {text!r}."
        )
    return params


def main(argv: list[str]) -> int:
    """Parses `argv` (program name first), prints the summary; returns the exit code."""
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    if bool(FLAGS.backbone) == bool(FLAGS.experiment):
        print(
            "error: set exactly one of --backbone and --experiment. Received: "
            f"backbone={FLAGS.backbone!r}, experiment={FLAGS.experiment!r}.",
            file=sys.stderr,
        )
        return 2
    try:
        if FLAGS.backbone:
            if FLAGS.config_file or FLAGS.params_override:
                raise ValueError(
                    "--config_file and --params_override apply to --experiment; "
                    "give a backbone's arguments with --params."
                )
            params = _parse_params(FLAGS.params)
            size = FLAGS.input_size or 224
            input_shape = (size, size, FLAGS.input_channels)
            model = build_backbone(FLAGS.backbone, params, input_shape)
            title = f"backbone {FLAGS.backbone} {params}"
        else:
            if FLAGS["params"].present:
                raise ValueError(
                    "--params applies to --backbone; change an experiment with "
                    "--params_override=task.model.backbone.params.KEY=VALUE."
                )
            model, input_shape = build_experiment_model(
                FLAGS.experiment,
                FLAGS.config_file,
                FLAGS.params_override,
                FLAGS.input_size,
            )
            title = f"experiment {FLAGS.experiment} ({type(model).__name__})"
        summary = summarize(model, input_shape)
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if e.args else str(e)
        print(f"error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    print(format_summary(title, summary))
    return 0


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
