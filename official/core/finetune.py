"""Fine-tuning controls: freezing, per-variable learning rates, late unfreezing, LoRA.

`apply(model, config)` sets up a freshly built model for `trainer.finetune`
(`official/core/finetune_config.py`) and returns a `FinetuneSetup`; the
trainer calls it before it builds the optimizer, and the export calls it
before restoring a checkpoint, so both see the same variables.

- Freezing sets `variable.trainable = False`, so the variable leaves
  `model.trainable_variables` (no gradient, no optimizer slot, no weight
  decay). A batch norm whose variables are all frozen gets
  `layer.trainable = False`, which in Keras 3 (and Garden's
  `FusedBatchNormalization`) normalizes with the moving statistics even in a
  training step and leaves them as they are.
- Learning-rate multipliers scale the optimizer's *update* of a variable,
  in the train step (`UpdateMultipliers.rescale`: `v = old + m * (v - old)`
  after `optimizer.apply`). Scaling the gradient instead would be the same
  for plain SGD only: Adam divides it out again, and decoupled weight decay
  never sees it. Every Keras optimizer's step is linear in its learning rate
  (SGD with momentum or Nesterov, Adam, AdamW, RMSprop: the momentum
  accumulates `lr * g`), so for a constant multiplier the scaled update is
  exactly the update with `m * lr`, weight decay included; Lamb's trust
  ratio makes it approximate there. The price is one copy of each scaled
  variable during the step.
- Gradual unfreezing is a multiplier of 0 until `unfreeze_at_step`, chosen in
  the graph by `tf.where` on `global_step` (no retrace). Unlike freezing, the
  waiting variables keep `trainable`: their batch norms run in training mode
  (batch statistics, moving averages updated) and the optimizer's moments
  follow their gradients while the updates are held back, so Adam starts
  warm at the unfreezing step, and SGD's momentum makes its first update
  carry the velocity gathered while waiting.
- LoRA (`official/core/lora.py`) enables Keras' adapters on the selected
  layers and freezes every other variable except `lora.trainable_patterns`.

Example:
```python
import keras
from official.core import finetune
from official.core.finetune_config import FinetuneConfig

model = keras.Sequential([
    keras.Input((4,)),
    keras.layers.Dense(8, name="body"),
    keras.layers.Dense(2, name="head"),
])
config = FinetuneConfig(freeze_patterns=["^body/"], lr_multipliers={"^head/": 10.0})
setup = finetune.apply(model, config)
[v.path for v in model.trainable_variables]  # -> ['head/kernel', 'head/bias']
setup.multipliers.values  # -> (10.0, 10.0)
```
"""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from official.core import lora
from official.core import variable_paths as paths_lib
from official.core.finetune_config import FinetuneConfig

_WHERE = "trainer.finetune"


def _tf_variable(variable):
    """The `tf.Variable` (or distributed variable) behind a Keras variable."""
    return variable.value if isinstance(variable, keras.Variable) else variable


@dataclasses.dataclass(frozen=True, eq=False)
class UpdateMultipliers:
    """Per-variable multipliers of the optimizer's update, applied by the step.

    Attributes:
        variables: the trainable variables whose update is scaled.
        values: one multiplier per variable.
        start_steps: one per variable: the multiplier is 0 while
            `global_step` < it (gradual unfreezing), `values` from then on.
    """

    variables: tuple
    values: tuple[float, ...]
    start_steps: tuple[int, ...]

    def snapshot(self) -> list[tf.Tensor]:
        """The variables' values before the update (call in replica context)."""
        return [tf.identity(_tf_variable(v)) for v in self.variables]

    def factors(self, step) -> list[tf.Tensor]:
        """The multipliers at `step` (a scalar tensor): 0 before each start step."""
        step = tf.cast(step, tf.int64)
        return [
            tf.where(step >= start, tf.constant(value, tf.float32), 0.0)
            if start > 0
            else tf.constant(value, tf.float32)
            for value, start in zip(self.values, self.start_steps)
        ]

    def rescale(self, before: list[tf.Tensor], step) -> None:
        """`v = before + factor * (v - before)`, for every variable.

        Call in replica context right after `optimizer.apply`; the update is
        made on every device through the strategy, as the optimizer's is.
        """
        factors = self.factors(step)

        def update(variable, old, factor):
            new = tf.convert_to_tensor(variable)
            factor = tf.cast(factor, new.dtype)
            return variable.assign(
                tf.where(factor == 1.0, new, old + factor * (new - old))
            )

        def merged(strategy, before, factors):
            for variable, old, factor in zip(self.variables, before, factors):
                strategy.extended.update(
                    _tf_variable(variable), update, args=(old, factor), group=False
                )

        tf.distribute.get_replica_context().merge_call(merged, args=(before, factors))


@dataclasses.dataclass(frozen=True)
class FinetuneSetup:
    """What `apply` did.

    Attributes:
        frozen: paths of the variables frozen (no longer trainable).
        inference_batch_norms: names of the batch norms set to inference mode.
        lora_layers: names of the layers LoRA was enabled on.
        multipliers: the update multipliers for the step, or None.
        trainable_parameters: parameters in `model.trainable_variables`.
        total_parameters: parameters in `model.weights`.
    """

    frozen: tuple[str, ...] = ()
    inference_batch_norms: tuple[str, ...] = ()
    lora_layers: tuple[str, ...] = ()
    multipliers: UpdateMultipliers | None = None
    trainable_parameters: int = 0
    total_parameters: int = 0


def count_parameters(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


def _matches(patterns, path: str) -> bool:
    return any(re.search(p, path) for p in patterns)


def _check_used(patterns, paths, key: str) -> None:
    for pattern in patterns:
        if not any(re.search(pattern, p) for p in paths):
            raise ValueError(
                f"{_WHERE}.{key}: {pattern!r} matches no variable. Some paths: "
                f"{lora._some(list(paths))}."
            )


def layer_decay_multipliers(paths, config: FinetuneConfig) -> dict[str, float]:
    """`{path: multiplier}` of layer-wise learning-rate decay (1.0 when off).

    With L blocks, block n (1-based, captured by
    `layer_decay_block_pattern`) gets rate^(L + 1 - n), the embeddings
    rate^(L + 1), and every other variable (final norm, head) 1.
    """
    paths = list(paths)
    if config.layer_decay_rate == 1.0:
        return {p: 1.0 for p in paths}
    block = re.compile(config.layer_decay_block_pattern)
    embedding = re.compile(config.layer_decay_embedding_pattern)
    numbers = {p: int(m.group(1)) for p in paths if (m := block.search(p))}
    if not numbers:
        raise ValueError(
            f"{_WHERE}.layer_decay_block_pattern "
            f"{config.layer_decay_block_pattern!r} matches no variable, so there "
            f"are no blocks to decay. Some paths: {lora._some(paths)}."
        )
    depth = max(numbers.values())
    rate = config.layer_decay_rate
    out = {}
    for p in paths:
        if p in numbers:
            out[p] = rate ** (depth + 1 - numbers[p])
        elif embedding.search(p):
            out[p] = rate ** (depth + 1)
        else:
            out[p] = 1.0
    return out


def _lr_multiplier(config: FinetuneConfig, path: str) -> float:
    for pattern, value in config.lr_multipliers.items():
        if re.search(pattern, path):
            return float(value)
    return 1.0


def _freeze(model, paths, frozen_paths) -> tuple[str, ...]:
    """Freezes the variables; batch norms with every variable frozen infer."""
    frozen_ids = {id(paths[p]) for p in frozen_paths}
    norms = []
    for layer in paths_lib.all_layers(model):
        if (
            isinstance(layer, keras.layers.BatchNormalization)
            and layer.weights
            and all(id(v) in frozen_ids for v in layer.weights)
        ):
            layer.trainable = False  # moving statistics, never updated
            norms.append(layer.name)
    for p in frozen_paths:
        paths[p].trainable = False
    return tuple(norms)


def apply(
    model: keras.Model, config: FinetuneConfig, log: bool = True
) -> FinetuneSetup:
    """Sets `model` up for `config`; returns what it did.

    Call once on a freshly built model, in the strategy's scope (LoRA
    creates variables), before the optimizer is built. Logs the trainable and
    total parameter counts (and what was frozen) when `log` is True.
    """
    lora_layers: tuple[str, ...] = ()
    if config.lora.rank:
        lora_layers = tuple(
            layer.name
            for layer in lora.enable(
                model,
                config.lora.rank,
                config.lora.alpha,
                config.lora.target_patterns,
                exclude_patterns=config.lora.trainable_patterns,
            )
        )
    paths = paths_lib.variable_paths(model)
    _check_used(config.freeze_patterns, paths, "freeze_patterns")
    _check_used(config.unfreeze_patterns, paths, "unfreeze_patterns")
    _check_used(config.lr_multipliers, paths, "lr_multipliers")
    _check_used(config.lora.trainable_patterns, paths, "lora.trainable_patterns")
    frozen = [p for p in paths if _matches(config.freeze_patterns, p)]
    if config.lora.rank:
        chosen = set(frozen)
        frozen = [
            p
            for p in paths
            if p in chosen
            or not (lora.is_adapter(p) or _matches(config.lora.trainable_patterns, p))
        ]
    both = [p for p in frozen if _matches(config.unfreeze_patterns, p)]
    if both:
        raise ValueError(
            f"{_WHERE}: {lora._some(both)} are frozen (freeze_patterns or LoRA) and "
            f"also match unfreeze_patterns. Frozen variables never train; drop them "
            f"from one of the two."
        )
    norms = _freeze(model, paths, frozen)
    trainable = {id(v) for v in model.trainable_variables}
    decay = layer_decay_multipliers(paths, config)
    scaled, values, starts = [], [], []
    for p, variable in paths.items():
        if id(variable) not in trainable:
            continue
        value = decay[p] * _lr_multiplier(config, p)
        start = config.unfreeze_at_step if _matches(config.unfreeze_patterns, p) else 0
        if value != 1.0 or start:
            scaled.append(variable)
            values.append(value)
            starts.append(start)
    multipliers = (
        UpdateMultipliers(tuple(scaled), tuple(values), tuple(starts))
        if scaled
        else None
    )
    setup = FinetuneSetup(
        frozen=tuple(frozen),
        inference_batch_norms=norms,
        lora_layers=lora_layers,
        multipliers=multipliers,
        trainable_parameters=count_parameters(model.trainable_variables),
        total_parameters=count_parameters(model.weights),
    )
    if log:
        _log(setup, config)
    return setup


def _log(setup: FinetuneSetup, config: FinetuneConfig) -> None:
    total = max(setup.total_parameters, 1)
    logging.info(
        "Parameters: %s trainable of %s (%.2f%%).",
        f"{setup.trainable_parameters:,}",
        f"{setup.total_parameters:,}",
        100.0 * setup.trainable_parameters / total,
    )
    if setup.lora_layers:
        logging.info(
            "LoRA rank %d, alpha %g on %d layers: %s.",
            config.lora.rank,
            config.lora.alpha or config.lora.rank,
            len(setup.lora_layers),
            lora._some(setup.lora_layers),
        )
    if setup.frozen:
        logging.info(
            "Frozen: %d variables (%s); %d batch norms in inference mode.",
            len(setup.frozen),
            lora._some(setup.frozen, limit=4),
            len(setup.inference_batch_norms),
        )
    m = setup.multipliers
    if m is not None:
        waiting = sum(1 for s in m.start_steps if s)
        logging.info(
            "Learning-rate multipliers on %d variables (min %.4g, max %.4g)%s.",
            len(m.values),
            min(m.values),
            max(m.values),
            f"; {waiting} held at 0 until step {config.unfreeze_at_step}"
            if waiting
            else "",
        )


def prepare_export(model: keras.Model, config: FinetuneConfig | None) -> None:
    """Sets up a freshly built model, before a checkpoint is restored for export.

    With the run's `config`, the model gets the same frozen variables and
    LoRA adapters as in training, so that the moving averages and the
    adapters restore onto the same variables.
    """
    if config is not None and config.active:
        apply(model, config, log=False)


def merge_adapters(model: keras.Model, prefix: str) -> int:
    """After the restore: merges LoRA adapters into the kernels (`lora.merge`).

    A checkpoint holding adapters restored into a model without LoRA (the
    export's config lost `trainer.finetune.lora`) is refused rather than
    exported without them. Returns the number of layers merged.
    """
    merged = lora.merge(model)
    if merged:
        logging.info(
            "Merged the LoRA adapters of %d layers into their kernels.", merged
        )
        return merged
    adapters = lora.checkpoint_adapters(prefix)
    if adapters:
        raise ValueError(
            f"Checkpoint {prefix!r} holds LoRA adapters ({lora._some(adapters, 2)}) "
            f"but the export's config has no trainer.finetune.lora: export with the "
            f"run's params.yaml (beside the checkpoint) or set it again."
        )
    return 0
