"""Causal-LM export pieces: restore + merge, the keras-hub preset, parity.

`tools/export_llm.py` puts them together with the SavedModel writer and the
atomic export directory of `serving/`:

    restore_for_export   the run's model (task.build_model), its
                         trainer.finetune (LoRA adapters), the checkpoint,
                         then the adapters folded into float kernels
    preset_lm            the keras-hub model the preset stores: the restored
                         one, or for LoRA on an int8 base its float merge
    write_preset         `save_to_preset` of that keras-hub model (with
                         its tokenizer) plus the chat template used in
                         training, loadable by `keras_hub.models.CausalLM.
                         from_preset` and by `task.model.preset`
    greedy_tokens        greedy completions of prompts through any callable
                         with the `generate` signature's inputs
    greedy_chat_tokens   the same for conversations and `generate_chat`
    compare_tokens       identical tokens per prompt, as a parity measure

LoRA on an int8 base (`task.model.quantize=int8`): the restored model keeps
the int8 kernels and the adapters unmerged (each call adds the adapters'
product to the int8 matmul), so the SavedModel computes exactly what was
trained. Its preset holds float weights, the dequantized base plus the
adapters' delta (`official/llm/export/float_merge.py`): keras-hub's own
`save_to_preset` would fold the adapters into the int8 kernels and quantize
them again, rounding away every change under half a quantization step.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import tensorflow as tf

from official.core import checkpoints, finetune, lora
from official.core.experiment_config import ExperimentConfig
from official.llm.data import chat_template
from official.llm.export import float_merge
from official.llm.models import causal_lm_builder


def restore_for_export(task, config: ExperimentConfig, checkpoint_path: str):
    """The run's model restored from `checkpoint_path`, LoRA merged into
    float kernels (int8 kernels keep their adapters, see the module docstring).

    Returns:
        `(model, checkpoint_prefix)`.
    """
    prefix = checkpoints.resolve_checkpoint(checkpoint_path)
    model = task.build_model()
    finetune.prepare_export(model, config.trainer.finetune)
    checkpoints.restore_model(model, prefix)
    if float_merge.int8_lora_layers(model.causal_lm):
        # The adapters are there (the run's LoRA config built them and the
        # restore matched them); merge those of float layers, if any.
        lora.merge(model)
    else:
        finetune.merge_adapters(model, prefix)
    return model, prefix


def preset_lm(task, model):
    """`(keras-hub CausalLM, weights)` for the preset of a restored model.

    The model's own `causal_lm` (`weights`: `as trained`), or, when int8
    layers carry LoRA adapters, the same architecture unquantized holding
    the dequantized base plus the adapters' delta (`weights`:
    `float: dequantized int8 base + LoRA delta`).
    """
    if not float_merge.int8_lora_layers(model.causal_lm):
        return model.causal_lm, "as trained"
    config = dataclasses.replace(task.config.model, quantize="")
    float_lm = causal_lm_builder.build_causal_lm(config)
    float_merge.float_weights_into(model.causal_lm, float_lm)
    return float_lm, "float: dequantized int8 base + LoRA delta"


def write_preset(task, lm, directory: str) -> str:
    """Writes keras-hub model `lm` as a preset, with `chat_template.json`."""
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


def pad_conversations(conversations) -> tuple[np.ndarray, np.ndarray]:
    """(roles, contents) lists -> the `[n, turns]` string arrays of
    `generate_chat`, shorter conversations padded with role and content ""."""
    turns = max((len(roles) for roles, _ in conversations), default=0)
    roles = np.full([len(conversations), turns], "", dtype=object)
    contents = np.full([len(conversations), turns], "", dtype=object)
    for i, (row_roles, row_contents) in enumerate(conversations):
        roles[i, : len(row_roles)] = list(row_roles)
        contents[i, : len(row_contents)] = list(row_contents)
    return roles, contents


def greedy_chat_tokens(
    generate_chat, conversations, max_new_tokens: int
) -> dict[str, np.ndarray]:
    """`generate_chat(roles=..., contents=..., ...)` on (roles, contents)
    conversations with greedy settings, outputs as numpy."""
    roles, contents = pad_conversations(conversations)
    n = len(conversations)
    outputs = generate_chat(
        roles=tf.constant(roles.tolist(), tf.string),
        contents=tf.constant(contents.tolist(), tf.string),
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
