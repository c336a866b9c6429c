"""CausalLMTask on Garden's trainer, then tools/export_llm.py (end to end, slow)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.core.experiment_config import ExperimentConfig, TrainerConfig
from official.core.finetune_config import FinetuneConfig, LoRAConfig
from official.core.train_lib import run_experiment
from official.llm.experiments import DECODER_LORA_TARGET_PATTERNS, adam_cosine
from tests.official.llm import llm_testing

pytestmark = pytest.mark.slow


def _experiment(root, steps=4, **model_kwargs) -> ExperimentConfig:
    exp = ExperimentConfig(
        task=llm_testing.task_config(root, **model_kwargs),
        trainer=TrainerConfig(
            train_steps=steps,
            steps_per_loop=2,
            checkpoint_interval=steps,
            validation_interval=steps,
            optimizer_config=adam_cosine(1e-3, steps, warmup_steps=0, weight_decay=0.0),
        ),
    )
    exp.runtime.seed = 0
    return exp


def test_full_sft_with_accumulation_reports_generations(tmp_path, caplog):
    exp = _experiment(tmp_path)
    exp.trainer.optimizer_config.gradient_accumulation_steps = 2
    exp.validate()
    with caplog.at_level("INFO"):
        logs = run_experiment(exp, "train_and_eval", str(tmp_path / "run"))
    assert {"loss", "perplexity", "token_accuracy", "exact_match", "token_f1"} <= set(
        logs
    )
    assert np.isclose(logs["perplexity"], np.exp(logs["loss"]), rtol=0.2)
    with open(tmp_path / "run" / "eval_results.json") as f:
        results = json.load(f)
    assert results["step"] == 4
    rows = results["generations"]
    assert [r["prompt"] for r in rows] == ["What is 0+1?", "What is 1+1?"]
    assert [r["reference"] for r in rows] == ["1", "2"]
    assert all(
        set(r) == {"prompt", "completion", "reference", "exact_match", "token_f1"}
        for r in rows
    )
    assert "'What is 0+1?' ->" in caplog.text  # the report in the log


@pytest.mark.filterwarnings("ignore:.*does not have a `quantize` method")
def test_lora_on_an_int8_base_trains_and_saves_adapters(tmp_path, caplog):
    exp = _experiment(tmp_path, quantize="int8")
    exp.trainer.finetune = FinetuneConfig(
        lora=LoRAConfig(rank=2, alpha=4.0, target_patterns=DECODER_LORA_TARGET_PATTERNS)
    )
    exp.validate()
    with caplog.at_level("INFO"):
        logs = run_experiment(exp, "train", str(tmp_path / "run"))
    del logs
    assert os.path.exists(tmp_path / "run" / "lora_adapters.npz")
    assert "trainable" in caplog.text.lower()
    _check_int8_lora_export(exp, tmp_path)


def _check_int8_lora_export(exp, tmp_path):
    """tools/export_llm.py on the int8 + LoRA run: the SavedModel is the
    trained model (int8 kernels, adapters unmerged), the preset its float merge."""
    import keras_hub

    from official.core import lora
    from official.llm.export import llm_export
    from official.llm.tasks.causal_lm import CausalLMTask
    from tools import export_llm

    report = export_llm.export_llm(
        exp, str(tmp_path / "run"), str(tmp_path / "export"), 2
    )
    parity = report["parity"]
    assert parity["passed"]
    assert parity["saved_model"]["token_agreement"] == 1.0
    assert parity["preset"]["token_agreement"] == 1.0
    assert parity["preset"]["weights"].startswith("float")
    with open(tmp_path / "export" / "parity.json") as f:
        assert json.load(f)["preset"] == parity["preset"]

    # The model the export was checked against holds the trained adapters.
    task = CausalLMTask(exp.task)
    model, _ = llm_export.restore_for_export(task, exp, str(tmp_path / "run"))
    trained, _ = lora.read_adapters(str(tmp_path / "run" / lora.ADAPTERS_FILE))
    adapters = lora.adapter_variables(model)
    assert set(adapters) == set(trained)
    assert any(
        np.abs(trained[name]).max() > 0
        for name in adapters
        if name.endswith("lora_kernel_b")
    )
    for name, variable in adapters.items():
        np.testing.assert_array_equal(np.asarray(variable), trained[name])
    # The SavedModel keeps int8 kernels; the preset is float throughout.
    loaded = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    assert any(v.dtype == tf.int8 for v in loaded.variables)
    preset = keras_hub.models.CausalLM.from_preset(str(tmp_path / "export" / "preset"))
    assert preset.backbone.quantization_mode is None
    assert not any("int8" in str(v.dtype) for v in preset.weights)
    # Its logits: the trained model's up to the int8 rounding of matmul inputs.
    ids = np.array([[0, 40, 41, 42, 43, 44]], "int32")
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    trained_logits = np.asarray(model(inputs))
    gap = np.abs(np.asarray(preset(inputs)) - trained_logits).max()
    assert 0 < gap < 0.05 * np.abs(trained_logits).max()


def test_mixed_bfloat16_train_step(tmp_path):
    exp = _experiment(tmp_path, steps=2)
    exp.runtime.mixed_precision_dtype = "mixed_bfloat16"
    exp.task.generation.num_prompts = 0
    exp.validate()
    try:
        logs = run_experiment(exp, "train_and_eval", str(tmp_path / "run"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(logs["loss"])


def test_export_merges_lora_and_generates_the_same_tokens(tmp_path):
    from tools import export_llm

    exp = _experiment(tmp_path)
    exp.trainer.finetune = FinetuneConfig(
        lora=LoRAConfig(rank=2, alpha=4.0, target_patterns=DECODER_LORA_TARGET_PATTERNS)
    )
    exp.validate()
    run_experiment(exp, "train", str(tmp_path / "run"))
    report = export_llm.export_llm(
        exp, str(tmp_path / "run"), str(tmp_path / "export"), 3
    )
    parity = report["parity"]
    assert parity["passed"]
    assert parity["saved_model"]["token_agreement"] == 1.0
    assert parity["preset"]["token_agreement"] == 1.0
    assert "chat_template.json" in report["preset_files"]

    # The SavedModel against keras-hub's own greedy generate on the preset.
    import keras_hub

    preset = str(tmp_path / "export" / "preset")
    lm = keras_hub.models.CausalLM.from_preset(preset, preprocessor=None)
    tokenizer = keras_hub.models.CausalLMPreprocessor.from_preset(preset).tokenizer
    loaded = tf.saved_model.load(str(tmp_path / "export" / "saved_model"))
    out = loaded.signatures["generate"](
        prompts=tf.constant(["What is 3+1?"]),
        max_new_tokens=tf.constant([4]),  # task.generation.max_new_tokens
        temperature=tf.zeros([1]),
        top_k=tf.zeros([1], tf.int32),
        seed=tf.zeros([1], tf.int32),
    )
    prompt = "<|endoftext|><|user|>\nWhat is 3+1?\n<|assistant|>\n"
    ids = tokenizer(prompt)
    ids = np.asarray(ids)
    lm.compile(sampler="greedy")
    want = lm.generate(
        {
            "token_ids": np.pad(ids, (0, 4))[None],
            "padding_mask": np.pad(np.ones_like(ids), (0, 4))[None],
        },
        stop_token_ids=None,
    )
    want = np.asarray(want["token_ids"])[0, len(ids) :]
    stop = np.flatnonzero(want == 0)
    want = want[: stop[0]] if len(stop) else want
    got = out["token_ids"].numpy()[0, : int(out["num_tokens"][0])]
    assert got.tolist() == want.tolist()
    # The completion is those tokens' bytes.
    detokenize = tf.function(tokenizer.detokenize)
    assert (
        out["completions"].numpy()[0]
        == detokenize(tf.constant(want[None], tf.int32)).numpy()[0]
    )
