"""The registered causal-LM experiments load, validate and refuse what is missing."""

from __future__ import annotations

import pytest

from official.base.config import ConfigError
from official.core.config_loader import load_experiment_config


def test_preset_recipes_need_a_preset(tmp_path):
    for name in ("smollm_sft_lora", "gpt2_sft"):
        with pytest.raises(ConfigError, match="task.model.preset"):
            load_experiment_config(name)
        cfg = load_experiment_config(
            name, params_override={"task.model.preset": str(tmp_path)}
        )
        assert cfg.task.train_data.packing
    cfg = load_experiment_config(
        "smollm_sft_lora", params_override={"task.model.preset": str(tmp_path)}
    )
    assert cfg.trainer.finetune.lora.rank == 16
    assert cfg.trainer.optimizer_config.gradient_accumulation_steps == 4


def test_demo_sft_needs_the_pretrained_weights(tmp_path):
    overrides = {"task.model.tokenizer_preset": str(tmp_path)}
    with pytest.raises(ConfigError, match="trainer.init_checkpoint"):
        load_experiment_config("tiny_lm_arithmetic_sft", params_override=overrides)
    cfg = load_experiment_config(
        "tiny_lm_arithmetic_sft",
        params_override={**overrides, "trainer.init_checkpoint": str(tmp_path)},
    )
    assert cfg.task.generation.num_prompts == 80
    pretrain = load_experiment_config(
        "tiny_lm_arithmetic_pretrain", params_override=overrides
    )
    assert pretrain.task.train_data.loss_on == "all"


def test_model_config_errors_name_the_key(tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'num_layers'"):
        load_experiment_config(
            "tiny_lm_arithmetic_pretrain",
            params_override={
                "task.model.tokenizer_preset": str(tmp_path),
                "task.model.backbone_params.num_layer": 2,
            },
        )
    with pytest.raises(ValueError, match="set exactly one of `preset`"):
        load_experiment_config(
            "tiny_lm_arithmetic_pretrain",
            params_override={"task.model.preset": str(tmp_path)},
        )
