"""The training binary.

Example:
    python -m official.train --experiment=resnet_digits --mode=train_and_eval \\
      --model_dir=runs/digits \\
      --params_override=task.train_data.input_path=data/digits/train-*,task.validation_data.input_path=data/digits/validation-*

`--experiment=list` prints the registered experiments.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

# Neither imports TensorFlow: `--help`, `--experiment=list` and a mistyped
# config key are answered before a run starts it.
from official.core.experiment_config import MODES
from official.core.quiet_start import import_tensorflow_quietly, quiet_start

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "experiment", None, "Registered experiment name, or 'list' to print them all."
)
flags.DEFINE_enum("mode", "train_and_eval", list(MODES), "What to run.")
flags.DEFINE_string(
    "model_dir", None, "Checkpoints, summaries and params.yaml go here."
)
flags.DEFINE_multi_string(
    "config_file", [], "YAML file overriding the experiment's defaults (repeatable)."
)
flags.DEFINE_string(
    "params_override",
    "",
    "Comma-separated dotted.key=value overrides applied after the config files, "
    "e.g. trainer.train_steps=100,task.train_data.global_batch_size=64.",
)
flags.DEFINE_float(
    "continuous_eval_timeout",
    3600.0,
    "continuous_eval: seconds to wait for a new checkpoint before stopping.",
)


def main(argv: list[str]) -> int:
    del argv
    import official.registry_configs  # noqa: F401  (the experiments; no TensorFlow)
    from official.base.registries import EXPERIMENTS
    from official.core import config_loader, exp_factory

    if FLAGS.experiment == "list":
        for name, doc in exp_factory.describe_experiments():
            print(f"{name:28s} {doc}")
        return 0
    if not FLAGS.experiment:
        raise app.UsageError(
            "--experiment is required (use --experiment=list to see the choices)."
        )
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required, e.g. --model_dir=/tmp/run1.")
    if FLAGS.experiment not in EXPERIMENTS:
        # Registered outside `registry_configs`, or a typo (whose error then
        # lists every name).
        _start_tensorflow()
    try:
        # Quiet in case resolving imports TensorFlow: deeplabv3_shapes reads
        # its class names from the data writer, an image folder is listed.
        with quiet_start():
            params = config_loader.resolve_experiment_config(
                FLAGS.experiment, FLAGS.config_file, FLAGS.params_override
            )
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        return _fail(e)
    # A run starts here: TensorFlow, then the backbones, heads, tasks and
    # optimizers that `validate()` checks the params against.
    _start_tensorflow()
    import tensorflow as tf

    from official.base.config import ConfigError
    from official.core import record_guard, train_lib
    from official.core.checkpoints import CheckpointError
    from official.core.trainer import PREEMPTED_EXIT_CODE, Preempted

    try:
        params.validate()
    except (KeyError, TypeError, ValueError) as e:
        return _fail(e)
    try:
        logs = train_lib.run_experiment(
            params,
            FLAGS.mode,
            FLAGS.model_dir,
            FLAGS.continuous_eval_timeout,
            experiment=FLAGS.experiment,
        )
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        return _fail(e)
    except tf.errors.InvalidArgumentError as e:
        message = record_guard.bad_record_message(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 1
    except Preempted as e:
        logging.warning("%s", e)
        return PREEMPTED_EXIT_CODE
    except (
        TimeoutError,
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
    ) as e:
        # A peer worker never started, died or stopped answering. TensorFlow's
        # collective threads may still be blocked on it: exit without waiting.
        _fail(e)
        logging.flush()
        os._exit(1)
    if logs:
        logging.info("Final evaluation: %s", logs)
    return 0


def _start_tensorflow() -> None:
    """Imports TensorFlow quietly, then every registering module."""
    import_tensorflow_quietly()  # Lists the devices quietly if already imported.
    import official.registry_imports  # noqa: F401  (fills the registries)


def _fail(error: Exception) -> int:
    message = error.args[0] if error.args else str(error)
    print(f"error: {type(error).__name__}: {message}", file=sys.stderr, flush=True)
    return 1


def run() -> None:
    """Console-script entry point (`garden-train`)."""
    # `--help` prints the __main__ module's docstring: make it this one's.
    sys.modules["__main__"].__doc__ = __doc__
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
