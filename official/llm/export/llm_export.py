"""Causal-LM export pieces: restore + merge, the keras-hub preset, parity.

`tools/export_llm.py` puts them together with the SavedModel writer and the
atomic export directory of `serving/`:

    restore_for_export   the run's model (task.build_model), its
                         trainer.finetune (LoRA adapters), the checkpoint,
                         then the adapters folded into the kernels
    write_preset         `save_to_preset` of the merged keras-hub model (with
                         its tokenizer) plus the chat template used in
                         training, loadable by `keras_hub.models.CausalLM.
                         from_preset` and by `task.model.preset`
    greedy_tokens        greedy completions of prompts through any callable
                         with the `generate` signature's inputs
    compare_tokens       identical tokens per prompt, as a parity measure

An int8 base keeps its LoRA adapters unmerged in the SavedModel (its kernels
cannot hold the float sum; each call adds the adapters' product); its preset
is written by keras-hub, which stores int8 kernels with the adapters folded
in and quantized again.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from official.core import checkpoints, finetune
from official.core.experiment_config import ExperimentConfig
from official.llm.data import chat_template


def restore_for_export(task, config: ExperimentConfig, checkpoint_path: str):
    """The run's model restored from `checkpoint_path`, LoRA merged.

    Returns:
        `(model, checkpoint_prefix)`.
    """
    prefix = checkpoints.resolve_checkpoint(checkpoint_path)
    model = task.build_model()
    finetune.prepare_export(model, config.trainer.finetune)
    checkpoints.restore_model(model, prefix)
    finetune.merge_adapters(model, prefix)
    return model, prefix


def write_preset(task, model, directory: str) -> str:
    """Writes the merged keras-hub model as a preset, with `chat_template.json`."""
    lm = model.causal_lm
    lm.save_to_preset(directory)
    chat_template.write_template(task.encoder().template, directory)
    return directory


def greedy_tokens(generate, prompts, max_new_tokens: int) -> dict[str, np.ndarray]:
    """`generate(prompts=..., ...)` with greedy settings, outputs as numpy."""
    n = len(prompts)
    outputs = generate(
        prompts=tf.constant(list(prompts), tf.string),
        max_new_tokens=tf.fill([n], max_new_tokens),
        temperature=tf.zeros([n], tf.float32),
        top_k=tf.zeros([n], tf.int32),
        seed=tf.zeros([n], tf.int32),
    )
    return {name: np.asarray(value) for name, value in outputs.items()}


def compare_tokens(reference: dict[str, Any], candidate: dict[str, Any]) -> float:
    """Share of prompts whose completion tokens are identical."""
    same = [
        int(a) == int(b) and np.array_equal(r[: int(a)], c[: int(b)])
        for r, c, a, b in zip(
            reference["token_ids"],
            candidate["token_ids"],
            reference["num_tokens"],
            candidate["num_tokens"],
        )
    ]
    return float(np.mean(same)) if same else 0.0


def preset_files(directory: str) -> list[str]:
    """The files of a written preset, relative to it."""
    return sorted(
        os.path.relpath(os.path.join(root, name), directory)
        for root, _, names in os.walk(directory)
        for name in names
    )
