"""Tiny causal LMs, tokenizers and SFT data for the llm tests (nothing downloaded)."""

from __future__ import annotations

import json
import os

import keras_hub

from official.llm.configs.causal_lm import CausalLMModelConfig, CausalLMTaskConfig
from official.llm.data import byte_tokenizer

TINY_GPT2 = dict(
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=128,
)
TINY_LLAMA = dict(
    num_layers=2,
    num_query_heads=2,
    num_key_value_heads=1,
    hidden_dim=16,
    intermediate_dim=32,
)


def tokenizer_dir(root) -> str:
    """A byte-level GPT-2 tokenizer preset written by the test."""
    return byte_tokenizer.write_byte_tokenizer(os.path.join(str(root), "tokenizer"))


def tiny_gpt2(vocabulary_size: int = 40) -> keras_hub.models.GPT2CausalLM:
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size, name="gpt2_backbone", **TINY_GPT2
    )
    return keras_hub.models.GPT2CausalLM(backbone)


def tiny_llama(vocabulary_size: int = 40) -> keras_hub.models.LlamaCausalLM:
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=vocabulary_size, name="llama_backbone", **TINY_LLAMA
    )
    return keras_hub.models.LlamaCausalLM(backbone)


def tiny_smollm3(vocabulary_size: int = 40) -> keras_hub.models.SmolLM3CausalLM:
    backbone = keras_hub.models.SmolLM3Backbone(
        vocabulary_size=vocabulary_size,
        hidden_dim=16,
        intermediate_dim=32,
        num_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        attention_bias=False,
        attention_dropout=0.0,
        rope_layer_enabled_list=[True, False],
        layer_types=["full_attention", "full_attention"],
        mlp_bias=False,
        layer_norm_epsilon=1e-6,
        max_position_embeddings=64,
        rope_theta=10000.0,
        partial_rotary_factor=1.0,
        name="smollm3_backbone",
    )
    return keras_hub.models.SmolLM3CausalLM(backbone)


def write_jsonl(path, records) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return str(path)


def qa_records(n: int = 12) -> list[dict]:
    """Chats "What is a+1?" -> "a+1" and a prompt/completion form."""
    out = []
    for a in range(n):
        if a % 2:
            out.append({"prompt": f"What is {a}+1?", "completion": str(a + 1)})
        else:
            out.append(
                {
                    "messages": [
                        {"role": "system", "content": "Answer briefly."},
                        {"role": "user", "content": f"What is {a}+1?"},
                        {"role": "assistant", "content": str(a + 1)},
                    ]
                }
            )
    return out


def task_config(root, **model_kwargs) -> CausalLMTaskConfig:
    """A tiny GPT-2 SFT task on JSONL files written under `root`."""
    root = str(root)
    train = write_jsonl(os.path.join(root, "train.jsonl"), qa_records(12))
    validation = write_jsonl(os.path.join(root, "validation.jsonl"), qa_records(4))
    config = CausalLMTaskConfig(
        model=CausalLMModelConfig(
            architecture="GPT2Backbone",
            backbone_params=dict(TINY_GPT2),
            tokenizer_preset=tokenizer_dir(root),
            **model_kwargs,
        )
    )
    config.train_data.input_path = train
    config.train_data.global_batch_size = 4
    config.train_data.sequence_length = 96
    config.validation_data.input_path = validation
    config.validation_data.global_batch_size = 4
    config.validation_data.sequence_length = 96
    config.generation.num_prompts = 2
    config.generation.max_new_tokens = 4
    return config
