"""The training and evaluation loops under a `tf.distribute` strategy.

The trainer owns the strategy, the optimizer, the moving average of the
weights, checkpoints, summaries and the loop; the task supplies the model, the
inputs, the loss and the metrics. The optimizer step (loss scaling across
replicas and for float16, gradient accumulation and clipping, the non-finite
guard, XLA) lives in `train_step`: the trainer hands it a
`train_step.TrainState` naming what it reads and updates, never itself.
`steps_per_loop` training steps run inside one `tf.function` call. A step is
one optimizer update: `train_steps`, the intervals, the learning-rate
schedule and `global_step` count updates, and with
`gradient_accumulation_steps` N a step reads N batches.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import threading
import time
from typing import Any

import keras
import tensorflow as tf
from absl import logging

from official.core import (
    checkpoints,
    cpu_tuning,
    distribute,
    finetune,
    lora,
    model_store,
    train_step,
)
from official.core import hooks as hooks_lib
from official.core.base_task import Task
from official.core.experiment_config import ExperimentConfig
from official.modeling.ema import ExponentialMovingAverage
from official.modeling.optimization import optimizer_factory

# The exit status of a run stopped by SIGTERM after saving a checkpoint: the
# scheduler should start it again, and it resumes.
PREEMPTED_EXIT_CODE = 42


class Preempted(Exception):
    """Training stopped on SIGTERM; a checkpoint of the last step was saved."""


def _scalar(value: Any) -> float:
    return float(keras.ops.convert_to_numpy(value))


def _format_logs(logs: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in logs.items())


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


class Trainer:
    """Trains and evaluates one task's model.

    Args:
        config: the validated experiment config.
        task: the task built from `config.task`.
        model_dir: where checkpoints, summaries and results go.
        strategy: the distribution strategy; everything built by the trainer
            is created in its scope.
        hooks: extra `official.core.hooks.Hook`s, called after the built-in
            ones the config turns on.
        training: False when the trainer only evaluates (the learning-rate
            scaling is then not logged). Default True.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        task: Task,
        model_dir: str,
        strategy: tf.distribute.Strategy,
        hooks: list | None = None,
        training: bool = True,
    ):
        # Tensor buffers off mmap (a no-op when a binary already did it).
        cpu_tuning.tune_process()
        cpu_tuning.warn_if_onednn_off(logging)
        self.config = config
        self.task = task
        self.model_dir = model_dir
        self.strategy = strategy
        trainer_config = config.trainer

        self.is_chief = distribute.is_chief(strategy)
        self.accumulation_steps = (
            trainer_config.optimizer_config.gradient_accumulation_steps
        )
        if self.accumulation_steps < 1:
            raise ValueError(
                "trainer.optimizer_config.gradient_accumulation_steps must be >= 1 "
                f"(1 = no accumulation). Received: {self.accumulation_steps}."
            )
        # Examples per optimizer update.
        self.examples_per_step = (
            config.task.train_data.global_batch_size * self.accumulation_steps
        )
        with strategy.scope():
            self.model = task.build_model()
            if strategy.num_replicas_in_sync > 1:
                _synchronize_batch_norm(self.model)
            # Freezing, LoRA and learning-rate multipliers, before the
            # optimizer sees the trainable variables.
            self.finetune = finetune.apply(
                self.model, trainer_config.finetune, log=training
            )
            optimizer = optimizer_factory.build_optimizer(
                optimizer_factory.scale_learning_rate(
                    trainer_config.optimizer_config,
                    self.examples_per_step,
                    log=training,
                )
            )
            # Several replicas: the trainer clips the gradient summed over
            # them (Keras would clip each replica's share).
            self.clipping = (
                train_step.take_clipping(optimizer)
                if strategy.num_replicas_in_sync > 1
                else None
            )
            if config.runtime.mixed_precision_dtype == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            # Slots must exist before the first distributed step.
            self.optimizer.build(self.model.trainable_variables)
            self.global_step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self.skipped_steps = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="skipped_steps",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self.ema = (
                ExponentialMovingAverage(
                    self.model.trainable_variables, trainer_config.ema_decay
                )
                if trainer_config.ema_decay > 0
                else None
            )
            self.accumulators = (
                train_step.make_accumulators(self.model.trainable_variables)
                if self.accumulation_steps > 1
                else []
            )
        # Metrics live outside the strategy and are updated in cross-replica
        # context with every replica's local results.
        self.train_loss = keras.metrics.Mean("loss")
        self.train_metrics = task.build_metrics(training=True)
        self.eval_loss = keras.metrics.Mean("loss")
        self.eval_metrics = task.build_metrics(training=False)

        checkpoints.check_checkpointable(self.model)
        objects = dict(
            model=self.model,
            optimizer=self.optimizer,
            step=self.global_step,
            skipped_steps=self.skipped_steps,
        )
        if self.ema is not None:
            objects["ema"] = self.ema
        self.checkpoint = tf.train.Checkpoint(**objects)
        # Every worker saves (the variables may live on any of them); only
        # the chief's copy is kept.
        self._checkpoint_dir = (
            model_dir
            if self.is_chief
            else os.path.join(
                model_dir, ".worker_tmp", f"worker_{strategy.cluster_resolver.task_id}"
            )
        )
        self.checkpoint_manager = tf.train.CheckpointManager(
            self.checkpoint,
            directory=self._checkpoint_dir,
            max_to_keep=trainer_config.max_to_keep,
            checkpoint_name="ckpt",
            step_counter=self.global_step,
        )
        self._train_loop_fn = None
        self._eval_step_fn = None
        self._writers: dict[str, Any] = {}
        self._stop_requested = threading.Event()
        self.stop_training = False
        self.hooks = hooks_lib.build_hooks(trainer_config) + list(hooks or [])
        for hook in self.hooks:
            hook.trainer = self

    # ---- inputs -----------------------------------------------------------

    def distribute_inputs(self, data_config, skip_batches: int = 0):
        """The task's dataset for `data_config`, one pipeline per worker.

        Each pipeline batches at the per-replica batch size and skips its
        first `skip_batches` batches (to resume a deterministic input order
        at the restored step).
        """

        def dataset_fn(ctx):
            dataset = self.task.build_inputs(data_config, ctx)
            return dataset.skip(skip_batches) if skip_batches else dataset

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # ---- checkpoints ------------------------------------------------------

    def restore_latest(self) -> str | None:
        """Restores the newest checkpoint in model_dir, if any."""
        latest = tf.train.latest_checkpoint(self.model_dir)
        if latest:
            with checkpoints.reading(latest):
                self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info(
                "Restored %s at step %d.", latest, int(self.global_step.numpy())
            )
        return latest

    def restore(self, path: str) -> None:
        with checkpoints.reading(path):
            self.checkpoint.restore(path).expect_partial()

    def initialize_from(self, path: str, modules: str) -> checkpoints.RestoreReport:
        """Initializes the model (or its backbone) from another run's checkpoint."""
        target = self.model
        if modules == "backbone":
            target = getattr(self.model, "backbone", None)
            if target is None:
                raise ValueError(
                    "trainer.init_checkpoint_modules='backbone' but the model "
                    f"{type(self.model).__name__} has no `backbone` attribute."
                )
        # `store:NAME` and archive URLs become a local checkpoint first.
        path = model_store.resolve_checkpoint_spec(
            path, self.config.trainer.init_checkpoint_manifests
        )
        report = checkpoints.initialize_from_checkpoint(target, path, modules)
        logging.info("%s", report.summary())
        return report

    def save_checkpoint(self) -> str:
        """Saves a checkpoint of the current step, never one with bad weights."""
        finite = all(
            bool(tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))))
            for v in self.model.trainable_variables
        )
        step = int(self.global_step.numpy())
        if not finite:
            raise FloatingPointError(
                f"Not saving a checkpoint at step {step}: the weights hold NaN or "
                f"Inf. Last good checkpoint: {self.checkpoint_manager.latest_checkpoint}."
            )
        with checkpoints.without_save_notices():
            path = self.checkpoint_manager.save(checkpoint_number=step)
        if not self.is_chief:
            tf.io.gfile.rmtree(self._checkpoint_dir)
            return os.path.join(self.model_dir, os.path.basename(path))
        logging.info("Saved checkpoint %s.", path)
        if self.finetune.lora_layers:  # The adapters alone, small.
            lora.save_adapters(
                self.model,
                os.path.join(self.model_dir, lora.ADAPTERS_FILE),
                {"step": step, **self.config.trainer.finetune.lora.as_dict()},
            )
        return path

    # ---- steps ------------------------------------------------------------

    def _train_state(self) -> train_step.TrainState:
        """What the train step reads and updates."""
        cfg = self.config.trainer
        return train_step.TrainState(
            model=self.model,
            optimizer=self.optimizer,
            task=self.task,
            strategy=self.strategy,
            global_step=self.global_step,
            skipped_steps=self.skipped_steps,
            train_loss=self.train_loss,
            train_metrics=self.train_metrics,
            accumulation_steps=self.accumulation_steps,
            accumulators=self.accumulators,
            clipping=self.clipping,
            ema=self.ema,
            nonfinite_policy=cfg.nonfinite_policy,
            jit_compile=cfg.jit_compile,
            update_multipliers=self.finetune.multipliers,
        )

    def _build_eval_step(self):
        model, task = self.model, self.task

        def step_fn(inputs):
            features, labels = inputs
            outputs, size = train_step.call_on_local_batch(model, features)
            loss = task.build_losses(labels, outputs, aux_losses=model.losses)
            # The mean over examples: each replica's loss weighs by its size,
            # and an empty replica (its loss a mean over nothing) weighs 0.
            count = tf.cast(size, tf.float32)
            weighted = tf.where(size > 0, tf.cast(loss, tf.float32) * count, 0.0)
            return weighted, count, labels, outputs

        @tf.function
        def eval_step(inputs):
            weighted, count, labels, outputs = self.strategy.run(
                step_fn, args=(inputs,)
            )
            train_step.update_metrics(
                self.strategy,
                task,
                self.eval_loss,
                self.eval_metrics,
                weighted,
                labels,
                outputs,
                count=count,
            )

        return eval_step

    # ---- summaries --------------------------------------------------------

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = (
                tf.summary.create_file_writer(os.path.join(self.model_dir, name))
                if self.is_chief
                else tf.summary.create_noop_writer()
            )
        return self._writers[name]

    def _sync_metrics(self, metrics) -> None:
        """Sums the metrics' states over workers (each counted its own replicas).

        A metric whose state lives on the host instead (numpy, no variables)
        defines `merge_across_workers(gather)`: it is called with
        `gather(array) -> array`, every worker's array concatenated along
        axis 0 (`distribute.gather_across_workers`), and then holds the
        state of the whole evaluation on every worker.
        """
        if not distribute.is_multi_worker(self.strategy):
            return
        local = len(self.strategy.extended.worker_devices)
        for metric in metrics:
            merge = getattr(metric, "merge_across_workers", None)
            if merge is not None:
                merge(
                    functools.partial(distribute.gather_across_workers, self.strategy)
                )
            for variable in metric.variables:
                value = tf.convert_to_tensor(variable)
                total = self.strategy.reduce(
                    tf.distribute.ReduceOp.SUM,
                    self.strategy.run(lambda v=value: v / local),
                    axis=None,
                )
                variable.assign(total)

    def _write_summaries(self, name: str, logs: dict[str, float], step: int) -> None:
        with self._writer(name).as_default(step=step):
            for key, value in logs.items():
                tf.summary.scalar(key, value)
        self._writer(name).flush()

    def close(self) -> None:
        """Flushes and closes the summary writers."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _learning_rate(self) -> float:
        # Keras 3 evaluates the schedule at the optimizer's iteration count.
        return _scalar(self.optimizer.learning_rate)

    # ---- preemption -------------------------------------------------------

    def _install_sigterm_handler(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            del signum, frame
            logging.warning("SIGTERM: saving a checkpoint after the current loop.")
            self._stop_requested.set()

        return signal.signal(signal.SIGTERM, handler)

    def _preemption_requested(self) -> bool:
        """Whether this worker or any peer got SIGTERM.

        Called by every worker after every loop: under multi-worker training
        the flags are summed over workers, so that all of them save the same
        step and stop together.
        """
        requested = self._stop_requested.is_set()
        if not distribute.is_multi_worker(self.strategy):
            return requested
        flag = tf.constant(1.0 if requested else 0.0)
        total = self.strategy.reduce(
            tf.distribute.ReduceOp.SUM, self.strategy.run(lambda: flag), axis=None
        )
        if total > 0 and not requested:
            logging.warning(
                "A peer worker got SIGTERM: saving a checkpoint and stopping."
            )
        return bool(total > 0)

    # ---- loops ------------------------------------------------------------

    def train(self, train_dataset, eval_dataset=None) -> dict[str, float]:
        """Trains to `trainer.train_steps`, evaluating and checkpointing on the way.

        Both datasets come from `distribute_inputs`. On SIGTERM, saves a
        checkpoint after the current loop and raises `Preempted`; under
        multi-worker training a SIGTERM to any worker stops all of them at
        the same step, each raising `Preempted`.
        """
        cfg = self.config.trainer
        if self._train_loop_fn is None:
            self._train_loop_fn = train_step.build_train_loop(self._train_state())
        global_batch = self.examples_per_step
        step = int(self.global_step.numpy())
        first_step = step
        if step >= cfg.train_steps:
            logging.info(
                "Already trained to step %d (train_steps=%d).", step, cfg.train_steps
            )
        # Only when a step will read it: creating the iterator starts the
        # input pipeline (for a resumed deterministic run, its skip of the
        # batches already trained) in the background.
        iterator = iter(train_dataset) if step < cfg.train_steps else None
        eval_logs: dict[str, float] = {}
        started = time.time()
        previous_handler = self._install_sigterm_handler()
        for hook in self.hooks:
            hook.on_train_begin()
        try:
            while step < cfg.train_steps and not self.stop_training:
                step = self._run_loop(iterator, step, global_batch, first_step, started)
                at_end = step >= cfg.train_steps
                if step % cfg.checkpoint_interval == 0 or at_end:
                    self.save_checkpoint()
                if eval_dataset is not None and (
                    (cfg.validation_interval and step % cfg.validation_interval == 0)
                    or at_end
                ):
                    eval_logs = self.evaluate(eval_dataset)
                if self.stop_training and step % cfg.checkpoint_interval and not at_end:
                    self.save_checkpoint()
                if not at_end and self._preemption_requested():
                    if step % cfg.checkpoint_interval:
                        self.save_checkpoint()
                    raise Preempted(
                        f"Stopped by SIGTERM at step {step}; resume with the same "
                        f"command (checkpoint {self.checkpoint_manager.latest_checkpoint})."
                    )
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            for hook in self.hooks:
                hook.on_train_end()
        if eval_dataset is not None and not eval_logs:
            # Nothing left to train (resumed at train_steps): still report.
            eval_logs = self.evaluate(eval_dataset)
        logging.info(
            "Training finished at step %d in %.1f s.", step, time.time() - started
        )
        return eval_logs

    def _run_loop(self, iterator, step, global_batch, first_step, started) -> int:
        cfg = self.config.trainer
        num_steps = min(cfg.steps_per_loop, cfg.train_steps - step)
        for metric in [self.train_loss, *self.train_metrics]:
            metric.reset_state()
        skipped_before = int(self.skipped_steps.numpy())
        loop_start = time.time()
        self._train_loop_fn(iterator, tf.constant(num_steps, tf.int32))
        step = int(self.global_step.numpy())
        elapsed = time.time() - loop_start
        skipped = int(self.skipped_steps.numpy()) - skipped_before
        self._sync_metrics(self.train_metrics)
        logs = {"loss": _scalar(self.train_loss.result())}
        logs.update({m.name: _scalar(m.result()) for m in self.train_metrics})
        logs["learning_rate"] = self._learning_rate()
        if skipped == num_steps or not all(map(_is_finite, logs.values())):
            raise FloatingPointError(
                f"Non-finite training loss at step {step}: {_format_logs(logs)}. "
                f"Training stopped; the last good checkpoint is "
                f"{self.checkpoint_manager.latest_checkpoint}. Set "
                f"trainer.nonfinite_policy=skip to drop such steps instead."
            )
        throughput = num_steps * global_batch / max(elapsed, 1e-9)
        done = step - first_step
        rate = (time.time() - started) / max(done, 1)
        eta = _format_duration(rate * (cfg.train_steps - step))
        logging.info(
            "train | step %d/%d | %s | %.3g examples/s | %.3g s/step | ETA %s%s",
            step,
            cfg.train_steps,
            _format_logs(logs),
            throughput,
            elapsed / num_steps,
            eta,
            f" | skipped {skipped} non-finite step(s)" if skipped else "",
        )
        summaries = {**logs, "examples_per_second": throughput}
        if skipped:
            summaries["skipped_steps"] = float(skipped)
        self._write_summaries("train", summaries, step)
        for hook in self.hooks:
            hook.on_loop_end(step, logs)
        return step

    def evaluate(self, eval_dataset) -> dict[str, float]:
        """One pass over `eval_dataset` (from `distribute_inputs`), or
        `validation_steps` batches of it, with the averaged weights if any."""
        if self._eval_step_fn is None:
            self._eval_step_fn = self._build_eval_step()
        for metric in [self.eval_loss, *self.eval_metrics]:
            metric.reset_state()
        limit = self.config.trainer.validation_steps
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            for i, batch in enumerate(eval_dataset):
                if limit > 0 and i >= limit:
                    break
                self._eval_step_fn(batch)
            details = self.task.eval_details(self.model)
        step = int(self.global_step.numpy())
        self._sync_metrics([self.eval_loss, *self.eval_metrics])
        logs = {"loss": _scalar(self.eval_loss.result())}
        logs.update({m.name: _scalar(m.result()) for m in self.eval_metrics})
        numbers = {
            k: float(v)
            for k, v in details.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        logs.update(numbers)
        logging.info("eval  | step %d | %s", step, _format_logs(logs))
        report = self.task.eval_report(logs)
        if report:
            logging.info("eval  | step %d | %s", step, report.replace("\n", "\n      "))
        self._write_summaries("validation", logs, step)
        if self.is_chief:
            path = os.path.join(self.model_dir, "eval_results.json")
            with tf.io.gfile.GFile(path, "w") as f:
                others = {k: v for k, v in details.items() if k not in numbers}
                json.dump({"step": step, **logs, **others}, f, indent=2)
        with checkpoints.without_save_notices():  # BestCheckpoint saves here.
            for hook in self.hooks:
                hook.on_eval_end(step, logs)
        return logs


def _synchronize_batch_norm(model: keras.Model) -> int:
    """Makes every BatchNormalization compute its statistics over all replicas.

    Unsynchronized, each replica's moving statistics drift apart silently.
    Keras reads the flag when the layer is called, so setting it after the
    model is built takes effect in the train step.
    """
    # `_flatten_layers` is Keras' own walk over nested layers (as in summary()).
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized
    ]
    for layer in layers:
        layer.synchronized = True
    if layers:
        logging.info("Synchronized %d batch-norm layers across replicas.", len(layers))
    return len(layers)
