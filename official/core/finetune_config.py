"""The fine-tuning controls of the trainer: `trainer.finetune`.

Patterns are Python regular expressions searched (`re.search`) in each
variable's path, as `official.core.finetune.variable_paths` names it (e.g.
`vi_t/block3/attention/query/kernel`); anchor them with `^` to match from the
start. Every pattern must match at least one variable when the model is
built, else the trainer stops naming it and showing some paths.
"""

from __future__ import annotations

import dataclasses
import re

from official.base.config import Config


def check_patterns(patterns, where: str) -> None:
    """Raises naming `where` when a pattern is not a valid regular expression."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(
                f"{where}: {pattern!r} is not a valid regular expression ({e})."
            ) from None


@dataclasses.dataclass
class LoRAConfig(Config):
    """Low-rank adapters through Keras' own `layer.enable_lora(rank, lora_alpha)`.

    `rank` > 0 turns LoRA on for the Dense, EinsumDense and Conv1D/2D/3D layers
    whose kernel path matches one of `target_patterns` (empty: all of them).
    Only the adapters (`lora_kernel_a`, `lora_kernel_b`) train, plus the
    variables matching `trainable_patterns` (e.g. a new head, which then gets
    no adapters: it trains whole); every other
    variable is frozen and every batch norm runs in inference mode. The
    adapted kernel is `kernel + (alpha / rank) * a @ b`; `alpha` 0 means
    `alpha` = `rank`. The chief writes the adapters alone to
    `model_dir/lora_adapters.npz` at every checkpoint; the export merges them
    into the kernels.
    """

    rank: int = 0
    alpha: float = 0.0
    target_patterns: list[str] = dataclasses.field(default_factory=list)
    trainable_patterns: list[str] = dataclasses.field(default_factory=list)

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.rank < 0:
            raise ValueError(
                f"{where}.rank must be >= 0 (0 = off). Received: {self.rank}."
            )
        if self.alpha < 0:
            raise ValueError(
                f"{where}.alpha must be >= 0 (0 = rank). Received: {self.alpha}."
            )
        check_patterns(self.target_patterns, f"{where}.target_patterns")
        check_patterns(self.trainable_patterns, f"{where}.trainable_patterns")
        if not self.rank and (self.target_patterns or self.trainable_patterns):
            raise ValueError(
                f"{where}.target_patterns and trainable_patterns need {where}.rank > 0. "
                f"Received: rank=0, target_patterns={self.target_patterns}, "
                f"trainable_patterns={self.trainable_patterns}."
            )


@dataclasses.dataclass
class FinetuneConfig(Config):
    """What trains, and how fast, when fine-tuning (`trainer.finetune`).

    - `freeze_patterns`: variables matching any never train; a batch norm
      whose variables all match runs in inference mode (moving statistics,
      not updated).
    - `lr_multipliers`: `{pattern: multiplier}`; a variable's learning rate
      is multiplied by the first pattern (in order) it matches. The step
      scales the optimizer's *update* of the variable, which for a constant
      multiplier equals that learning rate for SGD (momentum, Nesterov),
      Adam, AdamW and RMSprop, weight decay included.
    - `layer_decay_rate` < 1: layer-wise learning-rate decay for transformer
      encoders. Block n of L (its number captured by `layer_decay_block_pattern`)
      gets rate^(L + 1 - n), the embeddings (`layer_decay_embedding_pattern`)
      rate^(L + 1), everything else (final norm, head) 1. It multiplies with
      `lr_multipliers`. The default patterns fit Garden's ViT.
    - `unfreeze_patterns` with `unfreeze_at_step` N: those variables get a
      multiplier of 0 for the first N steps, in the graph (no retrace). Their
      batch norms keep training mode, and the optimizer's moments keep
      following their gradients while they wait.
    - `lora`: see `LoRAConfig`.
    """

    freeze_patterns: list[str] = dataclasses.field(default_factory=list)
    lr_multipliers: dict[str, float] = dataclasses.field(default_factory=dict)
    layer_decay_rate: float = 1.0
    layer_decay_block_pattern: str = r"(?:^|/)block(\d+)/"
    layer_decay_embedding_pattern: str = (
        r"(?:^|/)(?:patch_embedding|class_token|position_embedding)/"
    )
    unfreeze_patterns: list[str] = dataclasses.field(default_factory=list)
    unfreeze_at_step: int = 0
    lora: LoRAConfig = dataclasses.field(default_factory=LoRAConfig)

    @property
    def active(self) -> bool:
        """Whether anything here changes training."""
        return bool(
            self.freeze_patterns
            or self.lr_multipliers
            or self.layer_decay_rate != 1.0
            or self.unfreeze_patterns
            or self.lora.rank
        )

    def validate(self, where: str = "") -> None:
        super().validate(where)
        check_patterns(self.freeze_patterns, f"{where}.freeze_patterns")
        check_patterns(self.unfreeze_patterns, f"{where}.unfreeze_patterns")
        check_patterns(self.lr_multipliers, f"{where}.lr_multipliers")
        for pattern, value in self.lr_multipliers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(
                    f"{where}.lr_multipliers[{pattern!r}] must be a number. "
                    f"Received: {value!r}."
                )
            if value < 0:
                raise ValueError(
                    f"{where}.lr_multipliers[{pattern!r}] must be >= 0. "
                    f"Received: {value}."
                )
        if not 0.0 < self.layer_decay_rate <= 1.0:
            raise ValueError(
                f"{where}.layer_decay_rate must be in (0, 1] (1 = off). "
                f"Received: {self.layer_decay_rate}."
            )
        check_patterns(
            [self.layer_decay_block_pattern, self.layer_decay_embedding_pattern],
            f"{where}.layer_decay_*_pattern",
        )
        if re.compile(self.layer_decay_block_pattern).groups != 1:
            raise ValueError(
                f"{where}.layer_decay_block_pattern must capture the block number "
                f"in one group. Received: {self.layer_decay_block_pattern!r}."
            )
        if self.unfreeze_at_step < 0:
            raise ValueError(
                f"{where}.unfreeze_at_step must be >= 0. Received: "
                f"{self.unfreeze_at_step}."
            )
        if bool(self.unfreeze_patterns) != bool(self.unfreeze_at_step):
            raise ValueError(
                f"{where}.unfreeze_patterns and {where}.unfreeze_at_step go "
                f"together. Received: unfreeze_patterns={self.unfreeze_patterns}, "
                f"unfreeze_at_step={self.unfreeze_at_step}."
            )
