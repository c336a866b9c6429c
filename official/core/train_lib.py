"""`run_experiment`: train and/or evaluate an experiment, from Python or the binary."""

from __future__ import annotations

import os

import keras
import tensorflow as tf
from absl import logging

from official.core import checkpoints, distribute, durations, task_factory
from official.core.experiment_config import MODES, ExperimentConfig
from official.core.trainer import Trainer
from official.modeling.layers import conv2d


def _log_devices(strategy: tf.distribute.Strategy, name: str) -> None:
    devices = getattr(strategy.extended, "worker_devices", ())
    logging.info(
        "Strategy %s with %d replica(s) on %s.",
        name,
        strategy.num_replicas_in_sync,
        ", ".join(devices),
    )


# First line of params.yaml when the experiment is known (a YAML comment, so
# the file still loads as the config alone).
EXPERIMENT_HEADER = "# experiment: "


def write_params(config: ExperimentConfig, model_dir: str, experiment: str = "") -> str:
    """Writes the resolved config to `model_dir/params.yaml`.

    With `experiment`, the file starts with `# experiment: NAME`, which the
    export reads to rebuild the run's config from this file alone.
    """
    path = os.path.join(model_dir, "params.yaml")
    tmp = path + ".tmp"
    header = f"{EXPERIMENT_HEADER}{experiment}\n" if experiment else ""
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(header + config.to_yaml())
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return path


def run_experiment(
    params: ExperimentConfig,
    mode: str,
    model_dir: str,
    continuous_eval_timeout: float = 3600.0,
    experiment: str = "",
) -> dict[str, float]:
    """Runs one experiment and returns the last evaluation's metrics.

    Args:
        params: a validated `ExperimentConfig`.
        mode: one of train, eval, train_and_eval, continuous_eval.
        model_dir: checkpoints, summaries, `params.yaml` and
            `eval_results.json` go here; training resumes from its latest
            checkpoint.
        continuous_eval_timeout: seconds `continuous_eval` waits for a new
            checkpoint before it stops.
        experiment: the registered name `params` came from; recorded in
            `params.yaml` so that the export finds it.

    Example:
    ```python
    import tempfile
    from official.core.config_loader import load_experiment_config
    from official.core.train_lib import run_experiment
    from official.datasets import digits
    data = tempfile.mkdtemp()
    digits.write_digits_tfrecords(data)
    cfg = load_experiment_config("resnet_digits", params_override={
        "task.train_data.input_path": data + "/train-*",
        "task.validation_data.input_path": data + "/validation-*",
        "trainer.train_steps": 2, "trainer.steps_per_loop": 1,
        "trainer.checkpoint_interval": 1, "trainer.validation_interval": 2})
    logs = run_experiment(cfg, "train_and_eval", tempfile.mkdtemp())
    assert "accuracy" in logs
    ```
    """
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}. Valid modes: {', '.join(MODES)}.")
    if not model_dir:
        raise ValueError("model_dir must be set (e.g. --model_dir=/tmp/my_run).")
    if mode in ("train", "train_and_eval"):
        params.task.train_data.check_source("task.train_data")
        logging.info("%s", durations.describe_training(params))
    if mode != "train":
        params.task.validation_data.check_source("task.validation_data")
    if params.runtime.seed is not None:
        keras.utils.set_random_seed(params.runtime.seed)
    if params.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(params.runtime.mixed_precision_dtype)
    conv2d.set_conv1x1_as_matmul(params.runtime.conv1x1_as_matmul)

    strategy = distribute.get_strategy(
        params.runtime.distribution_strategy,
        params.runtime.num_devices,
        worker_start_timeout=params.runtime.worker_start_timeout_seconds,
        tpu_address=params.runtime.tpu_address,
    )
    _log_devices(strategy, params.runtime.distribution_strategy)
    task = task_factory.get_task(params.task)
    trainer = Trainer(
        params, task, model_dir, strategy, training=mode in ("train", "train_and_eval")
    )

    # Restore, build the input pipelines and find the checkpoint to evaluate
    # first: a bad input path or an empty model_dir fails here, before
    # anything is written to model_dir.
    train_dataset = eval_dataset = None
    if mode in ("train", "train_and_eval"):
        resumed = trainer.restore_latest()
        if not resumed and params.trainer.init_checkpoint:
            trainer.initialize_from(
                params.trainer.init_checkpoint, params.trainer.init_checkpoint_modules
            )
        # With a deterministic input order, resume exactly where it stopped
        # (a step reads `gradient_accumulation_steps` batches).
        skip = (
            int(trainer.global_step.numpy()) * trainer.accumulation_steps
            if params.runtime.deterministic
            else 0
        )
        if skip and skip < params.trainer.train_steps * trainer.accumulation_steps:
            logging.info(
                "Resuming the input order (runtime.deterministic): the first "
                "training step reads past the %d batches already trained.",
                skip,
            )
        train_dataset = trainer.distribute_inputs(
            params.task.train_data, skip_batches=skip
        )
    if mode != "train":
        eval_dataset = trainer.distribute_inputs(params.task.validation_data)
    eval_checkpoint = (
        checkpoints.resolve_checkpoint(model_dir) if mode == "eval" else None
    )

    tf.io.gfile.makedirs(model_dir)
    if trainer.is_chief:
        write_params(params, model_dir, experiment)
    try:
        if mode in ("train", "train_and_eval"):
            return trainer.train(train_dataset, eval_dataset)
        if mode == "eval":
            trainer.restore(eval_checkpoint)
            return trainer.evaluate(eval_dataset)
        return _continuous_eval(
            trainer, eval_dataset, model_dir, continuous_eval_timeout
        )
    finally:
        trainer.close()


def _continuous_eval(trainer: Trainer, eval_dataset, model_dir: str, timeout: float):
    """Evaluates each new checkpoint once, until train_steps or the timeout."""
    logs: dict[str, float] = {}
    train_steps = trainer.config.trainer.train_steps
    for path in tf.train.checkpoints_iterator(
        model_dir, min_interval_secs=1, timeout=timeout
    ):
        trainer.restore(path)
        logs = trainer.evaluate(eval_dataset)
        if int(trainer.global_step.numpy()) >= train_steps:
            break
    else:
        logging.info("No new checkpoint in %.0f s; continuous eval stops.", timeout)
    return logs
