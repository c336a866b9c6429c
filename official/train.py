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

from official.core.quiet_start import import_tensorflow_quietly

# Before anything imports TensorFlow: no CUDA-driver noise on a CPU machine.
import_tensorflow_quietly()

from absl import app, flags, logging  # noqa: E402

from official.core import train_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "experiment", None, "Registered experiment name, or 'list' to print them all."
)
flags.DEFINE_enum("mode", "train_and_eval", list(train_lib.MODES), "What to run.")
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
    import tensorflow as tf

    import official.registry_imports  # noqa: F401  (fills the registries)
    from official.base.config import ConfigError
    from official.core import config_loader, exp_factory, record_guard
    from official.core.trainer import PREEMPTED_EXIT_CODE, Preempted

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
    try:
        params = config_loader.load_experiment_config(
            FLAGS.experiment, FLAGS.config_file, FLAGS.params_override
        )
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        return _fail(e)
    try:
        logs = train_lib.run_experiment(
            params, FLAGS.mode, FLAGS.model_dir, FLAGS.continuous_eval_timeout
        )
    except (ConfigError, FileNotFoundError) as e:
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
