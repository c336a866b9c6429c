"""Configs for the optimizer, the learning-rate schedule and warmup.

The optimizer and the schedule are named by `type` and take `params`, which
are checked against the registered constructor's signature when the config is
validated (the constructor signature is the schema).
"""

from __future__ import annotations

import dataclasses

from official.base.config import Config

# Schedules that reach their final value at `params.decay_steps` and stay.
DECAY_TO_END_SCHEDULES = ("cosine", "polynomial", "poly")


@dataclasses.dataclass
class OptimizerConfig(Config):
    """An optimizer from the OPTIMIZERS registry.

    `type` is one of sgd, adam, adamw, lamb, rmsprop; `params` are the
    keyword arguments of that Keras optimizer other than `learning_rate`,
    `weight_decay` and `global_clipnorm`, which come from `OptimizationConfig`
    (e.g. `{"momentum": 0.9, "nesterov": true}`).
    """

    type: str = "sgd"
    params: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class LearningRateConfig(Config):
    """A learning-rate schedule from the SCHEDULES registry.

    `type` is one of constant, stepwise, cosine, polynomial, poly (power 0.9
    to 0, DeepLab's), exponential;
    `params` are that schedule's keyword arguments, durations in steps
    (e.g. `{"initial_learning_rate": 0.1, "decay_steps": 1000}`); warmup is
    set by `WarmupConfig`, not by the schedule's own warmup arguments.
    `decay_epochs` > 0 states `params.decay_steps` in epochs of the training
    data; the experiment's config loader sets `decay_steps` from it and the
    global batch size. A new `type` starts with empty `params` and no
    `decay_epochs`.
    """

    type: str = "constant"
    params: dict = dataclasses.field(default_factory=lambda: {"learning_rate": 0.01})
    decay_epochs: float = 0.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.decay_epochs < 0:
            raise ValueError(
                f"{where}.decay_epochs must be >= 0 (0 = params.decay_steps as "
                f"given). Received: {self.decay_epochs}."
            )


@dataclasses.dataclass
class WarmupConfig(Config):
    """Linear warmup from `warmup_learning_rate` over `warmup_steps`.

    The ramp ends at the schedule's value at `warmup_steps`; after it the
    schedule is evaluated at the raw step (not shifted by the warmup).
    `warmup_epochs` > 0 states the warmup in epochs of the training data;
    the experiment's config loader sets `warmup_steps` from it and the
    global batch size.
    """

    warmup_steps: int = 0
    warmup_epochs: float = 0.0
    warmup_learning_rate: float = 0.0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.warmup_steps < 0:
            raise ValueError(
                f"{where}.warmup_steps must be >= 0. Received: {self.warmup_steps}."
            )
        if self.warmup_epochs < 0:
            raise ValueError(
                f"{where}.warmup_epochs must be >= 0 (0 = warmup_steps as given). "
                f"Received: {self.warmup_epochs}."
            )


@dataclasses.dataclass
class OptimizationConfig(Config):
    """Everything the trainer needs to build its optimizer.

    `weight_decay` is decoupled weight decay (applied by the optimizer, not
    added to the loss), skipped for biases and normalization parameters.
    `global_clipnorm` clips the gradients' global norm when > 0.
    `reference_batch_size` > 0 states the global batch size the learning
    rates are given for: at another batch size they scale by the linear rule
    (`batch / reference_batch_size`). 0 pins the rates as written.
    `gradient_accumulation_steps` = N > 1 sums the gradients of N
    consecutive batches and applies them as one update: a training step (as
    counted by `trainer.train_steps`, the intervals and the learning-rate
    schedule) is then one optimizer update over N batches, i.e. N *
    `global_batch_size` examples, and that is the batch size the linear
    learning-rate rule uses.
    """

    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    learning_rate: LearningRateConfig = dataclasses.field(
        default_factory=LearningRateConfig
    )
    warmup: WarmupConfig = dataclasses.field(default_factory=WarmupConfig)
    weight_decay: float = 0.0
    global_clipnorm: float = 0.0
    reference_batch_size: int = 0
    gradient_accumulation_steps: int = 1

    def validate(self, where: str = "") -> None:
        super().validate(where)
        # Checked against the registered constructors' signatures. Imported
        # here: the registered constructors are Keras classes, and a config is
        # read (`--help`, a typo in an override) without Keras.
        from official.modeling.optimization import components

        components.check_config(self, where)
        if self.reference_batch_size < 0:
            raise ValueError(
                f"{where}.reference_batch_size must be >= 0 (0 = no scaling). "
                f"Received: {self.reference_batch_size}."
            )
        steps = self.gradient_accumulation_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"{where}.gradient_accumulation_steps must be an integer >= 1 "
                f"(1 = no accumulation). Received: {steps!r}."
            )
        self._check_warmup_ends_before_decay(where)

    def _check_warmup_ends_before_decay(self, where: str) -> None:
        # The warmup ramps to the schedule's value at `warmup_steps`; a
        # schedule that has decayed to its end by then (0 for cosine and
        # polynomial by default) leaves nothing to train with.
        decay_steps = self.learning_rate.params.get("decay_steps")
        warmup_steps = self.warmup.warmup_steps
        if (
            self.learning_rate.type in DECAY_TO_END_SCHEDULES
            and isinstance(decay_steps, int)
            and not isinstance(decay_steps, bool)
            and 0 < decay_steps <= warmup_steps
        ):
            raise ValueError(
                f"{where}.warmup.warmup_steps={warmup_steps} is not below "
                f"{where}.learning_rate.params.decay_steps={decay_steps}: the "
                f"{self.learning_rate.type!r} schedule has decayed to its end "
                f"when the warmup finishes, and the warmup ramps to that value. "
                f"Shorten the warmup or lengthen decay_steps (usually "
                f"trainer.train_steps)."
            )
