"""The distributed training step: gradients, accumulation, clipping, update.

`build_train_loop(state)` returns the `tf.function` that runs a number of
training steps. `state` is a `TrainState`: the model, optimizer, task,
strategy, counters, metrics and step settings, named one by one. The trainer
builds it; the step reads nothing else, so a test can build one by hand and
run the loop without a trainer.

A step is one optimizer update. With `accumulation_steps` N > 1 a step reads
N batches, adds up their gradients in per-replica accumulators and applies
the sum once, so that N batches of B examples update the weights as one
batch of N * B would (for layers without batch statistics): the optimizer's
iteration count, and with it the learning-rate schedule, the EMA and
`global_step`, advance once per step.

Keras optimizers have a `gradient_accumulation_steps` argument of their own;
the step does not use it because Keras evaluates the learning-rate schedule
at the count of accumulated batches (the schedule runs N times too fast), a
`LossScaleOptimizer` drops a batch with an overflow from the window without
telling anyone (the window then no longer lines up with the steps), and its
accumulators are mirrored variables holding different values on each
replica.

Under several replicas, gradient clipping and the float16 loss-scale check
need the gradient summed over replicas: the step then all-reduces the
gradients itself, clips the sum (the Keras optimizer would clip each
replica's share before summing) and hands the optimizer the sum divided by
the replica count, which the optimizer's own all-reduce sums back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from official.core.experiment_config import NONFINITE_POLICIES

CLIPPING_KINDS = ("clipnorm", "global_clipnorm", "clipvalue")


def take_clipping(optimizer: keras.optimizers.Optimizer) -> tuple[str, float] | None:
    """Removes gradient clipping from `optimizer` and returns it.

    Args:
        optimizer: a Keras optimizer (not a `LossScaleOptimizer`).

    Returns:
        `(kind, value)` with kind one of `CLIPPING_KINDS`, or None when the
        optimizer does not clip. The optimizer no longer clips afterwards.
    """
    for kind in CLIPPING_KINDS:
        value = getattr(optimizer, kind, None)
        if value:
            setattr(optimizer, kind, None)
            return kind, float(value)
    return None


def clip_gradients(grads: list, kind: str, value, scale=1.0) -> list:
    """Clips `grads` as the Keras optimizer argument `kind` would.

    `scale` is the loss scale the gradients carry (float16 training): the
    threshold is scaled with them, which gives the clipped scaled gradient.
    """
    threshold = tf.cast(value, tf.float32) * tf.cast(scale, tf.float32)
    if kind == "global_clipnorm":
        return tf.clip_by_global_norm(grads, threshold)[0]
    if kind == "clipnorm":
        return [tf.clip_by_norm(g, threshold) for g in grads]
    if kind == "clipvalue":
        return [tf.clip_by_value(g, -threshold, threshold) for g in grads]
    raise ValueError(f"Unknown clipping {kind!r}. Valid: {', '.join(CLIPPING_KINDS)}.")


def make_accumulators(variables) -> list[tf.Variable]:
    """One zero gradient accumulator per variable, local to each replica.

    Call inside the strategy's scope. They are not checkpointed: a step ends
    with them at zero, and checkpoints are written between steps.
    """
    return [
        tf.Variable(
            tf.zeros(v.shape, dtype=v.dtype),
            trainable=False,
            name=f"gradient_accumulator_{i}",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.SUM,
        )
        for i, v in enumerate(variables)
    ]


@dataclasses.dataclass(frozen=True, eq=False)
class TrainState:
    """Everything the train loop reads and updates.

    Create the variables, `accumulators` and `ema` in `strategy`'s scope, and
    the metrics outside it (they are updated in cross-replica context).

    Attributes:
        model: the Keras model whose trainable variables are trained.
        optimizer: a built Keras optimizer, or a `LossScaleOptimizer` around
            one (float16 loss scaling).
        task: supplies `build_losses` and `update_metrics`.
        strategy: the distribution strategy.
        global_step: int64 variable, +1 per step.
        skipped_steps: int64 variable, +1 per step dropped under `skip`.
        train_loss: a `keras.metrics.Mean` of the per-batch loss.
        train_metrics: the task's training metrics.
        accumulation_steps: batches per optimizer update, >= 1.
        accumulators: `make_accumulators(model.trainable_variables)` when
            `accumulation_steps` > 1, else empty.
        clipping: `(kind, value)` from `take_clipping`, for more than one
            replica: the step clips the gradient summed over replicas. None
            when the optimizer clips (one replica) or nothing does.
        ema: the moving average, updated after every applied step, or None.
        nonfinite_policy: `stop` applies every batch (the caller sees the
            non-finite loss in `train_loss` and stops); `skip` drops a step
            whose loss is non-finite on any replica, keeps it out of the
            metrics and counts it in `skipped_steps`.
        jit_compile: compile the replica step, or its gradient computation
            under accumulation or `skip`, with XLA.
        update_multipliers: per-variable multipliers of the optimizer's
            update (learning-rate multipliers, layer-wise decay, gradual
            unfreezing: `official.core.finetune.UpdateMultipliers`), or None.
    """

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    task: Any
    strategy: tf.distribute.Strategy
    global_step: tf.Variable
    skipped_steps: tf.Variable
    train_loss: keras.metrics.Metric
    train_metrics: Sequence[keras.metrics.Metric] = ()
    accumulation_steps: int = 1
    accumulators: Sequence[tf.Variable] = ()
    clipping: tuple[str, float] | None = None
    ema: Any = None
    nonfinite_policy: str = "stop"
    jit_compile: bool = False
    update_multipliers: Any = None

    def __post_init__(self):
        if self.accumulation_steps < 1:
            raise ValueError(
                "TrainState.accumulation_steps must be >= 1 (1 = no accumulation). "
                f"Received: {self.accumulation_steps}."
            )
        if self.nonfinite_policy not in NONFINITE_POLICIES:
            raise ValueError(
                f"TrainState.nonfinite_policy must be one of {', '.join(NONFINITE_POLICIES)}. "
                f"Received: {self.nonfinite_policy!r}."
            )
        expected = (
            len(self.model.trainable_variables) if self.accumulation_steps > 1 else 0
        )
        if len(self.accumulators) != expected:
            raise ValueError(
                f"TrainState.accumulators must hold {expected} variables (one per trainable "
                f"variable when accumulation_steps > 1, else none). "
                f"Received: {len(self.accumulators)}."
            )
        if self.clipping is not None:
            if self.clipping[0] not in CLIPPING_KINDS:
                raise ValueError(
                    f"TrainState.clipping kind must be one of {', '.join(CLIPPING_KINDS)}. "
                    f"Received: {self.clipping[0]!r}."
                )
            if self.strategy.num_replicas_in_sync == 1:
                raise ValueError(
                    "TrainState.clipping is for more than one replica; with one, "
                    "leave the clipping on the optimizer. "
                    f"Received: clipping={self.clipping} with 1 replica."
                )


def update_metrics(
    strategy, task, loss_metric, metrics, loss, labels, outputs, count=None
) -> None:
    """Updates `loss_metric` and `metrics` in cross-replica context.

    Without `count`, `loss` is each replica's mean loss and the replicas are
    averaged. With `count` (each replica's number of examples), `loss` is each
    replica's summed loss and the metric gets the mean over examples, weighted
    by their total, so a short or empty batch weighs by its size.
    `task.update_metrics` sees each replica's local labels and outputs.
    """
    if count is None:
        loss_metric.update_state(
            strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
        )
    else:
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None)
        summed = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        loss_metric.update_state(summed / tf.maximum(total, 1.0), sample_weight=total)
    local_labels = strategy.experimental_local_results(labels)
    local_outputs = strategy.experimental_local_results(outputs)
    for replica_labels, replica_outputs in zip(local_labels, local_outputs):
        task.update_metrics(metrics, replica_labels, replica_outputs)


def call_on_local_batch(model, features):
    """`model(features, training=False)` that also runs on an empty batch.

    A replica's batch is empty when a worker's evaluation shard ran out a
    batch before the others' (`multi_worker_mirrored` keeps every worker
    stepping) or when the last batch has fewer examples than replicas.
    TensorFlow's oneDNN kernels fail on zero-sized batches (a fused
    convolution hands back its input's shape: "input depth must be evenly
    divisible by filter depth"), so an empty batch runs as one example of
    zeros, and every output is cut back to the batch's size.

    Returns:
        (outputs, batch_size): the model's outputs and the local batch size.
    """
    first = tf.nest.flatten(features)[0]
    size = tf.shape(first)[0]
    extra = tf.cast(tf.equal(size, 0), tf.int32)

    def pad(t):
        zeros = tf.zeros(tf.concat([[extra], tf.shape(t)[1:]], 0), t.dtype)
        return tf.concat([t, zeros], 0)

    outputs = model(tf.nest.map_structure(pad, features), training=False)

    def cut(t):
        return t[:size] if t.shape.rank else t

    return tf.nest.map_structure(cut, outputs), size


def _nonfinite(loss):
    return 1.0 - tf.cast(tf.reduce_all(tf.math.is_finite(loss)), tf.float32)


def build_train_loop(state: TrainState):
    """The `tf.function` `train_loop(iterator, num_steps)` for `state`.

    Each call runs `num_steps` steps on batches from `iterator` (a
    distributed iterator of `(features, labels)`), and updates the model,
    the optimizer, `global_step`, `skipped_steps`, the EMA and the train
    metrics of `state`.
    """
    model, optimizer, task = state.model, state.optimizer, state.task
    strategy = state.strategy
    accum = state.accumulation_steps
    skip_nonfinite = state.nonfinite_policy == "skip"
    replicas = strategy.num_replicas_in_sync
    clipping = state.clipping
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    reduce_first = replicas > 1 and (clipping is not None or loss_scaled)
    variables = model.trainable_variables
    multipliers = state.update_multipliers
    # Which variables get a gradient, known once `gradients` is traced.
    has_grad: list[bool] = []

    def gradients(features, labels):
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            loss = task.build_losses(labels, outputs, aux_losses=model.losses)
            # Summed over replicas and accumulated batches, this is the
            # gradient of the mean loss over all of them.
            scaled_loss = optimizer.scale_loss(loss / (replicas * accum))
        grads = tape.gradient(scaled_loss, variables)
        has_grad[:] = [g is not None for g in grads]
        return loss, outputs, [g for g in grads if g is not None]

    # XLA compiles the whole replica step where it is one (`fused_step`),
    # else the gradient computation.
    fused = accum == 1 and not skip_nonfinite
    if state.jit_compile and not fused:
        gradients = tf.function(gradients, jit_compile=True)

    def apply(grads):
        """Applies `grads` (this replica's share) in replica context."""
        if reduce_first:
            ctx = tf.distribute.get_replica_context()
            # Dense (an embedding's IndexedSlices too), so that they divide.
            grads = [tf.convert_to_tensor(g) for g in grads]
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            if clipping is not None:
                scale = optimizer.dynamic_scale if loss_scaled else 1.0
                grads = clip_gradients(grads, *clipping, scale=scale)
            grads = [g / replicas for g in grads]
        before = multipliers.snapshot() if multipliers is not None else None
        optimizer.apply(grads, [v for v, ok in zip(variables, has_grad) if ok])
        if multipliers is not None:
            # Scales the whole update (weight decay included): the same as a
            # per-variable learning rate for any optimizer linear in it.
            multipliers.rescale(before, state.global_step)

    def fused_step(inputs):
        features, labels = inputs
        loss, outputs, grads = gradients(features, labels)
        apply(grads)
        return loss, labels, outputs

    if state.jit_compile and fused:
        fused_step = tf.function(fused_step, jit_compile=True)

    def gradient_step(inputs):
        features, labels = inputs
        loss, outputs, grads = gradients(features, labels)
        return loss, labels, outputs, grads

    accumulators = list(state.accumulators)

    def accumulate_step(inputs):
        features, labels = inputs
        loss, outputs, grads = gradients(features, labels)
        kept = [a for a, ok in zip(accumulators, has_grad) if ok]
        for accumulator, grad in zip(kept, grads):
            accumulator.assign_add(tf.convert_to_tensor(grad))
        return loss, labels, outputs

    def apply_accumulated():
        apply([tf.convert_to_tensor(a) for a, ok in zip(accumulators, has_grad) if ok])

    def reset_accumulators():
        for accumulator in accumulators:
            accumulator.assign(tf.zeros_like(accumulator))

    def bad_replicas(loss):
        return strategy.reduce(
            tf.distribute.ReduceOp.SUM,
            strategy.run(_nonfinite, args=(loss,)),
            axis=None,
        )

    def record(loss, labels, outputs, bad):
        # Under `skip`, metrics never see a non-finite batch; under `stop`,
        # they do, and the caller stops at the end of the loop.
        if not skip_nonfinite or bad < 0.5:
            update_metrics(
                strategy,
                task,
                state.train_loss,
                state.train_metrics,
                loss,
                labels,
                outputs,
            )

    def one_step(iterator):
        """One optimizer update; returns 1 when it was skipped, else 0."""
        if fused:
            loss, labels, outputs = strategy.run(fused_step, args=(next(iterator),))
            record(loss, labels, outputs, 0.0)
            return tf.constant(0, tf.int64)
        if accum == 1:
            loss, labels, outputs, grads = strategy.run(
                gradient_step, args=(next(iterator),)
            )
            bad = bad_replicas(loss)
            record(loss, labels, outputs, bad)
            # Decided in cross-replica context: every replica takes the same
            # branch, and the optimizer's cross-replica calls sit inside it.
            skipped = tf.constant(1, tf.int64)
            if bad < 0.5:
                strategy.run(apply, args=(grads,))
                skipped = tf.constant(0, tf.int64)
            return skipped
        bad = tf.constant(0.0)
        for _ in tf.range(accum):
            loss, labels, outputs = strategy.run(
                accumulate_step, args=(next(iterator),)
            )
            batch_bad = bad_replicas(loss) if skip_nonfinite else 0.0
            record(loss, labels, outputs, batch_bad)
            bad += batch_bad
        skipped = tf.constant(0, tf.int64)
        if skip_nonfinite and bad > 0.5:
            skipped = tf.constant(1, tf.int64)
        else:
            strategy.run(apply_accumulated)
        strategy.run(reset_accumulators)
        return skipped

    @tf.function
    def train_loop(iterator, num_steps):
        for _ in tf.range(num_steps):
            skipped = one_step(iterator)
            state.skipped_steps.assign_add(skipped)
            if state.ema is not None and skipped == 0:
                state.ema.update()
            state.global_step.assign_add(1)

    return train_loop
