"""Imports weights you already have into a Garden checkpoint for fine-tuning.

Example (a keras.applications MobileNetV2 saved with `model.save_weights`):
    python tools/import_weights.py --source=keras_applications \\
      --architecture=mobilenet_v2 --weights_file=mobilenet_v2.weights.h5 \\
      --experiment=mobilenet_imagenet --output_dir=runs/imported_mobilenet_v2
    python -m official.train --experiment=mobilenet_imagenet --mode=train \\
      --model_dir=runs/finetune \\
      --params_override=trainer.init_checkpoint=runs/imported_mobilenet_v2

The experiment (with --config_file / --params_override) defines the Garden
model; its backbone must match the source (MobileNetV2: the same
width_multiplier; EfficientNet: the same model_id). The weights may be a
Keras 3 `.weights.h5` or a Keras 2 `.h5` file. Every backbone variable must be
matched; the classifier is imported when the number of classes agrees,
otherwise it keeps its initial values (then fine-tune with
trainer.init_checkpoint_modules=backbone).

Unless --noverify, the keras.applications model is rebuilt, loaded with the
same file and run beside the Garden model on random images: the import fails
when the outputs differ by more than 1e-5 x max(1, largest output).

Writes into --output_dir: `ckpt-1` (`tf.train.Checkpoint(model=...)`, what
trainer.init_checkpoint restores) and `import_report.json` (every variable
matched, missing or skipped by shape, every unused source weight, notes and
the verification). keras.applications' ResNet50 is refused: it is ResNet v1,
which Garden's ResNet (v1.5) cannot express.

A keras-hub preset directory (`config.json` + `model.weights.h5`, as
`Backbone.save_to_preset` writes it; needs the `hub` extra:
pip install -e ".[hub]") imports the same way with --source=keras_hub:
    python tools/import_weights.py --source=keras_hub \\
      --preset=presets/vit_base_patch16_224 --experiment=vit_imagenet \\
      --output_dir=runs/imported_vit_b16

Supported: keras-hub's ViTBackbone into Garden's ViT (the same patch size,
input size, widths and depth; class token <-> pooling=token), and its
ResNetBackbone v1 (basic or bottleneck blocks) into Garden's ResNet with
padding=symmetric and norm_epsilon=1e-5 (keras-hub pads strided convolutions
on every side, PyTorch style). Its ResNet v2 / vd, EfficientNet and MobileNet
backbones are refused with the reason. The preset holds no classifier: the
head keeps its initial values (fine-tune with
trainer.init_checkpoint_modules=backbone). Verification runs the keras-hub
backbone beside the Garden one on random inputs.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_enum(
    "source",
    "keras_applications",
    ["keras_applications", "keras_hub"],
    "Where the weights come from: keras.applications weights (--weights_file) "
    "or a keras-hub preset directory (--preset).",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "architecture",
    None,
    ["mobilenet_v2", "efficientnet", "resnet50"],
    "The keras.applications architecture (resnet50 is refused, with the "
    "reason). keras-hub presets name theirs in config.json.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "weights_file", None, "A .weights.h5 or .h5 weights file.", flag_values=FLAGS
)
flags.DEFINE_string(
    "preset",
    None,
    "A keras-hub preset directory (config.json, model.weights.h5).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "experiment", None, "The registered experiment to import into.", flag_values=FLAGS
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
flags.DEFINE_string(
    "output_dir", None, "Directory for the checkpoint and report.", flag_values=FLAGS
)
flags.DEFINE_bool(
    "verify",
    True,
    "Run the source model (keras.applications or keras-hub) beside the Garden model.",
    flag_values=FLAGS,
)
RELATIVE_TOLERANCE = 1e-5
SOURCE_NAMES = {"keras_applications": "keras.applications", "keras_hub": "keras-hub"}
REQUIRED = {
    "keras_applications": ("architecture", "weights_file"),
    "keras_hub": ("preset",),
}


def _verify(architecture: str, model, weights_file: str) -> dict:
    import numpy as np

    from official.vision.importers.source_models import (
        build_source_model,
        compare_outputs,
    )
    from official.vision.importers.weight_sources import classifier_units

    source = build_source_model(architecture, model, classifier_units(weights_file))
    source.load_weights(weights_file)
    shape = (2,) + tuple(model.input_shape[1:])
    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    gap, scale, compared = compare_outputs(architecture, source, model, images)
    return _tolerance_check(gap, scale, compared, "keras.applications")


def _tolerance_check(gap: float, scale: float, compared: str, source: str) -> dict:
    tolerance = RELATIVE_TOLERANCE * max(1.0, scale)
    if not gap <= tolerance:
        raise ValueError(
            f"The imported model's {compared} differ from {source}'s by "
            f"{gap:.3g} (tolerance {tolerance:.3g}); nothing was written."
        )
    return {"compared": compared, "max_abs_diff": gap, "tolerance": tolerance}


def _import_keras_hub(model) -> tuple:
    """(report, verification or None) of --source=keras_hub."""
    import numpy as np

    from official.vision.importers import keras_hub_vision

    try:
        source = keras_hub_vision.load_preset(FLAGS.preset)
    except keras_hub_vision.KerasHubMissingError as e:
        raise ValueError(str(e)) from None
    report = keras_hub_vision.import_keras_hub_preset(source, model)
    report.source = FLAGS.preset
    if not FLAGS.verify:
        return report, None
    shape = (2,) + tuple(model.input_shape[1:])
    images = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
    gap, scale, compared = keras_hub_vision.compare_outputs(source, model, images)
    return report, _tolerance_check(gap, scale, compared, "keras-hub")


def _check_source_flags() -> None:
    hub = FLAGS.source == "keras_hub"
    wrong = ("architecture", "weights_file") if hub else ("preset",)
    for name in wrong:
        if FLAGS[name].value:
            raise ValueError(
                f"--{name} is not used with --source={FLAGS.source} "
                + (
                    "(a keras-hub preset names its architecture in config.json and "
                    "holds its weights; pass --preset=DIR)."
                    if hub
                    else "(pass --weights_file and --architecture)."
                )
            )


def run() -> dict:
    """Imports, verifies and writes; returns what `describe` prints."""
    import tensorflow as tf

    import official.registry_imports  # noqa: F401
    from official.core import task_factory
    from official.core.config_loader import load_experiment_config
    from official.vision.importers.keras_applications import (
        RESNET_REFUSAL,
        import_keras_application,
    )

    _check_source_flags()
    if FLAGS.architecture == "resnet50":
        raise ValueError(RESNET_REFUSAL)
    if tf.io.gfile.exists(os.path.join(FLAGS.output_dir, "checkpoint")):
        raise ValueError(
            f"--output_dir={FLAGS.output_dir!r} already holds a checkpoint; "
            "choose a new directory."
        )
    try:
        config = load_experiment_config(
            FLAGS.experiment, list(FLAGS.config_file), FLAGS.params_override
        )
    except KeyError as e:  # an unknown experiment or config key
        raise ValueError(e.args[0] if e.args else str(e)) from None
    model = task_factory.get_task(config.task).build_model()
    if FLAGS.source == "keras_hub":
        report, verification = _import_keras_hub(model)
    else:
        report = import_keras_application(
            FLAGS.weights_file, model, architecture=FLAGS.architecture
        )
        verification = (
            _verify(FLAGS.architecture, model, FLAGS.weights_file)
            if FLAGS.verify
            else None
        )
    tf.io.gfile.makedirs(FLAGS.output_dir)
    prefix = tf.train.Checkpoint(model=model).save(
        os.path.join(FLAGS.output_dir, "ckpt")
    )
    record = {
        **report.to_dict(),
        "source_kind": FLAGS.source,
        "experiment": FLAGS.experiment,
        "checkpoint": prefix,
        "verification": verification,
    }
    with open(os.path.join(FLAGS.output_dir, "import_report.json"), "w") as f:
        json.dump(record, f, indent=1)
    return {"report": report, "prefix": prefix, "verification": verification}


def describe(result: dict) -> str:
    lines = [result["report"].summary(), f"Wrote {result['prefix']}."]
    check = result["verification"]
    if check:
        lines.append(
            f"Verified against {SOURCE_NAMES[FLAGS.source]}: max |diff| of the "
            f"{check['compared']}"
            f" = {check['max_abs_diff']:.3g} (tolerance {check['tolerance']:.3g})."
        )
    lines.append(
        f"Fine-tune with --params_override=trainer.init_checkpoint={FLAGS.output_dir}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    code = parse_flags(
        FLAGS,
        argv,
        __doc__,
        required=("experiment", "output_dir"),
    )
    if code is not None:
        return code
    for name in REQUIRED[FLAGS.source]:
        if not FLAGS[name].value:
            print(
                f"error: --{name} is required with --source={FLAGS.source} "
                "(see --help).",
                file=sys.stderr,
            )
            return 2
    return run_and_report(run, describe)


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
