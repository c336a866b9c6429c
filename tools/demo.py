"""`make demo`: digits TFRecords -> train -> evaluate -> export -> parity.

Runs the same code as the binaries, in one process:
    python -m official.datasets.digits --output_dir=OUT/data
    python -m official.train --experiment=resnet_digits --mode=train_and_eval ...
    python -m serving.export --experiment=resnet_digits ...
and prints the validation accuracy, the parity verdict and every artifact's path.
"""

from __future__ import annotations

import os
import sys
import time

from official.core.quiet_start import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "runs/demo", "Where data, model and export go.")
flags.DEFINE_float(
    "min_accuracy", 0.97, "The demo fails when validation accuracy ends below this."
)

EXPERIMENT = "resnet_digits"


def main(argv: list[str]) -> int:
    del argv
    import official.registry_imports  # noqa: F401
    from official.core.config_loader import load_experiment_config
    from official.core.train_lib import run_experiment
    from official.datasets import digits
    from serving.export import export_experiment, format_summary

    out = os.path.abspath(FLAGS.output_dir)
    data_dir = os.path.join(out, "data")
    model_dir = os.path.join(out, "model")
    export_dir = os.path.join(out, "export")
    started = time.time()

    print(f"[1/3] Writing the embedded digits data to {data_dir}", flush=True)
    summary = digits.write_digits_tfrecords(data_dir)
    overrides = {
        "task.train_data.input_path": summary["train"]["pattern"],
        "task.validation_data.input_path": summary["validation"]["pattern"],
    }
    config = load_experiment_config(EXPERIMENT, params_override=overrides)

    print(f"[2/3] Training {EXPERIMENT} in {model_dir}", flush=True)
    logs = run_experiment(config, "train_and_eval", model_dir, experiment=EXPERIMENT)
    accuracy = logs["accuracy"]

    print(f"[3/3] Exporting SavedModel and TFLite to {export_dir}", flush=True)
    report = export_experiment(
        config,
        model_dir,
        export_dir,
        formats=("saved_model", "tflite"),
        quantizations=("none", "int8"),
    )

    print()
    print(format_summary(report))
    print()
    print(f"Validation accuracy : {accuracy:.4f} (target >= {FLAGS.min_accuracy})")
    print(f"Data                : {data_dir}")
    print(f"Model dir           : {model_dir} (params.yaml, checkpoints, TensorBoard)")
    print(f"Export              : {export_dir}")
    print(f"Total time          : {time.time() - started:.0f} s")
    if accuracy < FLAGS.min_accuracy:
        logging.error("Accuracy %.4f is below %.2f.", accuracy, FLAGS.min_accuracy)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
