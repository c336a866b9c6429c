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
    ["keras_applications"],
    "Where the weights come from.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "architecture",
    None,
    ["mobilenet_v2", "efficientnet", "resnet50"],
    "The source architecture (resnet50 is refused, with the reason).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "weights_file", None, "A .weights.h5 or .h5 weights file.", flag_values=FLAGS
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
    "Run the rebuilt keras.applications model beside the Garden model.",
    flag_values=FLAGS,
)
RELATIVE_TOLERANCE = 1e-5


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
    tolerance = RELATIVE_TOLERANCE * max(1.0, scale)
    if not gap <= tolerance:
        raise ValueError(
            f"The imported model's {compared} differ from keras.applications' by "
            f"{gap:.3g} (tolerance {tolerance:.3g}); nothing was written."
        )
    return {"compared": compared, "max_abs_diff": gap, "tolerance": tolerance}


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
    report = import_keras_application(
        FLAGS.weights_file, model, architecture=FLAGS.architecture
    )
    verification = (
        _verify(FLAGS.architecture, model, FLAGS.weights_file) if FLAGS.verify else None
    )
    tf.io.gfile.makedirs(FLAGS.output_dir)
    prefix = tf.train.Checkpoint(model=model).save(
        os.path.join(FLAGS.output_dir, "ckpt")
    )
    record = {
        **report.to_dict(),
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
            f"Verified against keras.applications: max |diff| of the {check['compared']}"
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
        required=("architecture", "weights_file", "experiment", "output_dir"),
    )
    if code is not None:
        return code
    return run_and_report(run, describe)


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
