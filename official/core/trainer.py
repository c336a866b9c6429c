"""The training and evaluation loops under a `tf.distribute` strategy.

The trainer owns the strategy, the optimizer step, checkpoints, summaries and
the loop; the task supplies the model, the inputs, the loss and the metrics.
`steps_per_loop` training steps run inside one `tf.function` call.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import keras
import tensorflow as tf
from absl import logging

from official.core.base_task import Task
from official.core.experiment_config import ExperimentConfig
from official.modeling.optimization import optimizer_factory


def _scalar(value: Any) -> float:
    return float(keras.ops.convert_to_numpy(value))


def _format_logs(logs: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in logs.items())


class Trainer:
    """Trains and evaluates one task's model.

    Args:
        config: the validated experiment config.
        task: the task built from `config.task`.
        model_dir: where checkpoints, summaries and results go.
        strategy: the distribution strategy; everything built by the trainer
            is created in its scope.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        task: Task,
        model_dir: str,
        strategy: tf.distribute.Strategy,
    ):
        self.config = config
        self.task = task
        self.model_dir = model_dir
        self.strategy = strategy
        trainer_config = config.trainer

        with strategy.scope():
            self.model = task.build_model()
            self.optimizer = optimizer_factory.build_optimizer(
                trainer_config.optimizer_config
            )
            # Slots must exist before the first distributed step.
            self.optimizer.build(self.model.trainable_variables)
            self.global_step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        # Metrics live outside the strategy and are updated in cross-replica
        # context with every replica's local results.
        self.train_loss = keras.metrics.Mean("loss")
        self.train_metrics = task.build_metrics(training=True)
        self.eval_loss = keras.metrics.Mean("loss")
        self.eval_metrics = task.build_metrics(training=False)

        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.global_step
        )
        self.checkpoint_manager = tf.train.CheckpointManager(
            self.checkpoint,
            directory=model_dir,
            max_to_keep=trainer_config.max_to_keep,
            checkpoint_name="ckpt",
            step_counter=self.global_step,
        )
        self._train_loop_fn = None
        self._eval_step_fn = None
        self._writers: dict[str, Any] = {}

    # ---- checkpoints ------------------------------------------------------

    def restore_latest(self) -> str | None:
        """Restores the newest checkpoint in model_dir, if any."""
        latest = self.checkpoint_manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("Restored %s at step %d.", latest, int(self.global_step.numpy()))
        return latest

    def restore(self, path: str) -> None:
        self.checkpoint.restore(path).expect_partial()

    def save_checkpoint(self) -> str:
        step = int(self.global_step.numpy())
        path = self.checkpoint_manager.save(checkpoint_number=step)
        logging.info("Saved checkpoint %s.", path)
        return path

    # ---- inputs -----------------------------------------------------------

    def distribute_inputs(self, data_config):
        """The task's dataset for `data_config`, one pipeline per worker.

        Each pipeline batches at the per-replica batch size.
        """
        return self.strategy.distribute_datasets_from_function(
            lambda ctx: self.task.build_inputs(data_config, ctx)
        )

    # ---- steps ------------------------------------------------------------

    def _update_metrics(self, loss_metric, metrics, loss, labels, outputs) -> None:
        loss_metric.update_state(
            self.strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
        )
        local_labels = self.strategy.experimental_local_results(labels)
        local_outputs = self.strategy.experimental_local_results(outputs)
        for replica_labels, replica_outputs in zip(local_labels, local_outputs):
            self.task.update_metrics(metrics, replica_labels, replica_outputs)

    def _build_train_loop(self):
        model, optimizer, task = self.model, self.optimizer, self.task
        strategy = self.strategy

        def step_fn(inputs):
            features, labels = inputs
            with tf.GradientTape() as tape:
                outputs = model(features, training=True)
                loss = task.build_losses(labels, outputs, aux_losses=model.losses)
                # Gradients are summed across replicas.
                scaled_loss = loss / strategy.num_replicas_in_sync
            grads = tape.gradient(scaled_loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss, labels, outputs

        @tf.function
        def train_loop(iterator, num_steps):
            for _ in tf.range(num_steps):
                loss, labels, outputs = strategy.run(step_fn, args=(next(iterator),))
                self._update_metrics(
                    self.train_loss, self.train_metrics, loss, labels, outputs
                )
                self.global_step.assign_add(1)

        return train_loop

    def _build_eval_step(self):
        model, task = self.model, self.task

        def step_fn(inputs):
            features, labels = inputs
            outputs = model(features, training=False)
            loss = task.build_losses(labels, outputs, aux_losses=model.losses)
            return loss, labels, outputs

        @tf.function
        def eval_step(inputs):
            loss, labels, outputs = self.strategy.run(step_fn, args=(inputs,))
            self._update_metrics(self.eval_loss, self.eval_metrics, loss, labels, outputs)

        return eval_step

    # ---- summaries --------------------------------------------------------

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(
                os.path.join(self.model_dir, name)
            )
        return self._writers[name]

    def _write_summaries(self, name: str, logs: dict[str, float], step: int) -> None:
        with self._writer(name).as_default(step=step):
            for key, value in logs.items():
                tf.summary.scalar(key, value)
        self._writer(name).flush()

    def _learning_rate(self) -> float:
        # Keras 3 evaluates the schedule at the optimizer's iteration count.
        return _scalar(self.optimizer.learning_rate)

    # ---- loops ------------------------------------------------------------

    def train(self, train_dataset, eval_dataset=None) -> dict[str, float]:
        """Trains to `trainer.train_steps`, evaluating and checkpointing on the way.

        Both datasets come from `distribute_inputs`.
        """
        cfg = self.config.trainer
        if self._train_loop_fn is None:
            self._train_loop_fn = self._build_train_loop()
        iterator = iter(train_dataset)
        global_batch = self.config.task.train_data.global_batch_size
        step = int(self.global_step.numpy())
        if step >= cfg.train_steps:
            logging.info("Already trained to step %d (train_steps=%d).", step, cfg.train_steps)
        eval_logs: dict[str, float] = {}
        started = time.time()
        while step < cfg.train_steps:
            num_steps = min(cfg.steps_per_loop, cfg.train_steps - step)
            for metric in [self.train_loss, *self.train_metrics]:
                metric.reset_state()
            loop_start = time.time()
            self._train_loop_fn(iterator, tf.constant(num_steps, tf.int32))
            step = int(self.global_step.numpy())
            elapsed = time.time() - loop_start
            logs = {"loss": _scalar(self.train_loss.result())}
            logs.update({m.name: _scalar(m.result()) for m in self.train_metrics})
            logs["learning_rate"] = self._learning_rate()
            if not all(map(_is_finite, logs.values())):
                raise FloatingPointError(
                    f"Non-finite training loss or metric at step {step}: "
                    f"{_format_logs(logs)}. Last checkpoint: "
                    f"{self.checkpoint_manager.latest_checkpoint}."
                )
            throughput = num_steps * global_batch / max(elapsed, 1e-9)
            logging.info(
                "train | step %d/%d | %s | %.3g examples/s | %.3g s/step",
                step, cfg.train_steps, _format_logs(logs), throughput,
                elapsed / num_steps,
            )
            self._write_summaries("train", {**logs, "examples_per_second": throughput}, step)
            if step % cfg.checkpoint_interval == 0 or step >= cfg.train_steps:
                self.save_checkpoint()
            if eval_dataset is not None and (
                (cfg.validation_interval and step % cfg.validation_interval == 0)
                or step >= cfg.train_steps
            ):
                eval_logs = self.evaluate(eval_dataset)
        if eval_dataset is not None and not eval_logs:
            # Nothing left to train (resumed at train_steps): still report.
            eval_logs = self.evaluate(eval_dataset)
        logging.info("Training finished at step %d in %.1f s.", step, time.time() - started)
        return eval_logs

    def evaluate(self, eval_dataset) -> dict[str, float]:
        """One pass over `eval_dataset` (from `distribute_inputs`), or
        `validation_steps` batches of it."""
        if self._eval_step_fn is None:
            self._eval_step_fn = self._build_eval_step()
        for metric in [self.eval_loss, *self.eval_metrics]:
            metric.reset_state()
        limit = self.config.trainer.validation_steps
        for i, batch in enumerate(eval_dataset):
            if limit > 0 and i >= limit:
                break
            self._eval_step_fn(batch)
        step = int(self.global_step.numpy())
        logs = {"loss": _scalar(self.eval_loss.result())}
        logs.update({m.name: _scalar(m.result()) for m in self.eval_metrics})
        logging.info("eval  | step %d | %s", step, _format_logs(logs))
        self._write_summaries("validation", logs, step)
        with tf.io.gfile.GFile(os.path.join(self.model_dir, "eval_results.json"), "w") as f:
            json.dump({"step": step, **logs}, f, indent=2)
        return logs


def _is_finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
