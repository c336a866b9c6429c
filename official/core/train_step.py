"""The distributed training step: gradients, accumulation, clipping, update.

`build_train_loop(trainer)` returns the `tf.function` that runs a number of
training steps. A step is one optimizer update. With
`gradient_accumulation_steps` N > 1 a step reads N batches, adds up their
gradients in per-replica accumulators and applies the sum once, so that N
batches of B examples update the weights as one batch of N * B would (for
layers without batch statistics): the optimizer's iteration count, and with
it the learning-rate schedule, the EMA and the trainer's `global_step`,
advance once per step.

Keras optimizers have a `gradient_accumulation_steps` argument of their own;
the trainer does not use it because Keras evaluates the learning-rate
schedule at the count of accumulated batches (the schedule runs N times too
fast), a `LossScaleOptimizer` drops a batch with an overflow from the window
without telling anyone (the window then no longer lines up with the steps),
and its accumulators are mirrored variables holding different values on each
replica.

Under several replicas, gradient clipping and the float16 loss-scale check
need the gradient summed over replicas: the trainer then all-reduces the
gradients itself, clips the sum (the Keras optimizer would clip each
replica's share before summing) and hands the optimizer the sum divided by
the replica count, which the optimizer's own all-reduce sums back.
"""

from __future__ import annotations

import keras
import tensorflow as tf

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


def _nonfinite(loss):
    return 1.0 - tf.cast(tf.reduce_all(tf.math.is_finite(loss)), tf.float32)


def build_train_loop(trainer):
    """The `tf.function` `train_loop(iterator, num_steps)` of `trainer`.

    Reads `trainer.model`, `optimizer`, `task`, `strategy`, `config.trainer`,
    `clipping`, `accumulators`, `global_step`, `skipped_steps`, `ema` and
    updates the train metrics through `trainer._update_metrics`.
    """
    model, optimizer, task = trainer.model, trainer.optimizer, trainer.task
    strategy = trainer.strategy
    cfg = trainer.config.trainer
    accum = cfg.optimizer_config.gradient_accumulation_steps
    skip_nonfinite = cfg.nonfinite_policy == "skip"
    replicas = strategy.num_replicas_in_sync
    clipping = trainer.clipping
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    reduce_first = replicas > 1 and (clipping is not None or loss_scaled)
    variables = model.trainable_variables
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
    if cfg.jit_compile and not fused:
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
        optimizer.apply(grads, [v for v, ok in zip(variables, has_grad) if ok])

    def fused_step(inputs):
        features, labels = inputs
        loss, outputs, grads = gradients(features, labels)
        apply(grads)
        return loss, labels, outputs

    if cfg.jit_compile and fused:
        fused_step = tf.function(fused_step, jit_compile=True)

    def gradient_step(inputs):
        features, labels = inputs
        loss, outputs, grads = gradients(features, labels)
        return loss, labels, outputs, grads

    accumulators = trainer.accumulators

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
            tf.distribute.ReduceOp.SUM, strategy.run(_nonfinite, args=(loss,)), axis=None
        )

    def record(loss, labels, outputs, bad):
        # Under `skip`, metrics never see a non-finite batch; under `stop`,
        # they do, and the trainer stops at the end of the loop.
        if not skip_nonfinite or bad < 0.5:
            trainer._update_metrics(
                trainer.train_loss, trainer.train_metrics, loss, labels, outputs
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
            loss, labels, outputs = strategy.run(accumulate_step, args=(next(iterator),))
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
            trainer.skipped_steps.assign_add(skipped)
            if trainer.ema is not None and skipped == 0:
                trainer.ema.update()
            trainer.global_step.assign_add(1)

    return train_loop
