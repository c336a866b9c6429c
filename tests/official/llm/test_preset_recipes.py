"""The preset recipes (`smollm_sft_lora`, `gpt2_sft`) run as registered on a
keras-hub preset directory written here, then export (end to end, slow).

The presets are tiny and untrained (nothing is downloaded); the recipes keep
their own settings (LoRA targets, accumulation, mixed precision, template,
packing) and only the sizes are overridden to fit a test.
"""

from __future__ import annotations

import json
import os
import re

import keras
import keras_hub
import pytest

from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment
from official.llm.data import byte_tokenizer
from tests.official.llm import llm_testing

pytestmark = pytest.mark.slow

CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")


def _smollm3_preset(directory) -> str:
    """A tiny SmolLM3 preset: byte-level BPE with SmolLM3's special tokens and
    ChatML's markers as single tokens, as the published tokenizer has them."""
    vocabulary = byte_tokenizer.byte_vocabulary()
    for token in (
        "<|end_of_text|>",
        "<|begin_of_text|>",
        "<think>",
        "</think>",
        *CHATML_TOKENS,
    ):
        vocabulary.setdefault(token, len(vocabulary))
    tokenizer = keras_hub.models.SmolLM3Tokenizer(
        vocabulary=vocabulary,
        merges=list(byte_tokenizer.DEFAULT_MERGES),
        unsplittable_tokens=list(CHATML_TOKENS),
    )
    lm = llm_testing.tiny_smollm3(vocabulary_size=len(vocabulary))
    lm.preprocessor = keras_hub.models.SmolLM3CausalLMPreprocessor(tokenizer)
    lm.save_to_preset(str(directory))
    return str(directory)


def _gpt2_preset(directory) -> str:
    tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary=byte_tokenizer.byte_vocabulary(),
        merges=list(byte_tokenizer.DEFAULT_MERGES),
    )
    lm = llm_testing.tiny_gpt2(vocabulary_size=tokenizer.vocabulary_size())
    lm.preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer)
    lm.save_to_preset(str(directory))
    return str(directory)


def _recipe(name, preset, root, **extra):
    train = llm_testing.write_jsonl(
        os.path.join(root, "train.jsonl"), llm_testing.qa_records(12)
    )
    validation = llm_testing.write_jsonl(
        os.path.join(root, "validation.jsonl"), llm_testing.qa_records(4)
    )
    overrides = {
        "task.model.preset": preset,
        "task.train_data.input_path": train,
        "task.validation_data.input_path": validation,
        "task.train_data.sequence_length": 64,
        "task.validation_data.sequence_length": 64,
        "task.train_data.global_batch_size": 2,
        "task.validation_data.global_batch_size": 2,
        "task.generation.num_prompts": 2,
        "task.generation.max_new_tokens": 3,
        "trainer.train_steps": 4,
        "trainer.steps_per_loop": 2,
        "trainer.checkpoint_interval": 4,
        "trainer.validation_interval": 4,
        "trainer.optimizer_config.learning_rate.params.decay_steps": 4,
        "trainer.optimizer_config.warmup.warmup_steps": 1,
        **extra,
    }
    return load_experiment_config(name, params_override=overrides)


def _export(exp, root):
    from tools import export_llm

    report = export_llm.export_llm(
        exp, os.path.join(root, "run"), os.path.join(root, "export"), 2
    )
    assert report["parity"]["passed"]
    assert report["parity"]["saved_model"]["token_agreement"] == 1.0
    assert report["parity"]["preset"]["token_agreement"] == 1.0


def test_smollm_sft_lora_on_a_smollm3_preset(tmp_path, caplog):
    preset = _smollm3_preset(tmp_path / "smollm3")
    exp = _recipe(
        "smollm_sft_lora",
        preset,
        str(tmp_path),
    )
    assert exp.trainer.optimizer_config.gradient_accumulation_steps == 4
    assert exp.runtime.mixed_precision_dtype == "mixed_bfloat16"
    try:
        with caplog.at_level("INFO"):
            logs = run_experiment(exp, "train_and_eval", str(tmp_path / "run"))
    finally:
        keras.config.set_dtype_policy("float32")
    assert {"loss", "perplexity", "exact_match"} <= set(logs)
    # Only the adapters train, and they are saved on their own.
    assert os.path.exists(tmp_path / "run" / "lora_adapters.npz")
    counts = re.search(r"Parameters: ([\d,]+) trainable of ([\d,]+)", caplog.text)
    trainable, total = (int(n.replace(",", "")) for n in counts.groups())
    assert 0 < trainable < total  # the base is frozen
    # `auto` found no template file in the preset and took the family's: ChatML.
    with open(tmp_path / "run" / "eval_results.json") as f:
        assert len(json.load(f)["generations"]) == 2
    _export(exp, str(tmp_path))
    with open(tmp_path / "export" / "preset" / "chat_template.json") as f:
        assert "<|im_start|>" in f.read()


def test_gpt2_sft_on_a_gpt2_preset(tmp_path):
    preset = _gpt2_preset(tmp_path / "gpt2")
    exp = _recipe(
        "gpt2_sft",
        preset,
        str(tmp_path),
    )
    logs = run_experiment(exp, "train_and_eval", str(tmp_path / "run"))
    assert {"loss", "perplexity", "exact_match"} <= set(logs)
    assert not os.path.exists(tmp_path / "run" / "lora_adapters.npz")
    _export(exp, str(tmp_path))
