"""LoRA on keras-hub causal LMs through trainer.finetune, float and int8 bases."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from official.core import finetune, lora
from official.core.finetune_config import FinetuneConfig, LoRAConfig
from official.llm.experiments import DECODER_LORA_TARGET_PATTERNS
from official.llm.models.sft_model import SFTModel
from tests.official.llm import llm_testing

LORA = FinetuneConfig(
    lora=LoRAConfig(rank=2, alpha=4.0, target_patterns=DECODER_LORA_TARGET_PATTERNS)
)


def _batch():
    ids = np.array([[3, 4, 5, 6, 7, 8, 9, 10]] * 2, "int32")
    features = {
        "token_ids": ids,
        "segment_ids": np.array([[1, 1, 1, 1, 2, 2, 2, 2]] * 2),
        "positions": np.array([[0, 1, 2, 3, 0, 1, 2, 3]] * 2),
    }
    labels = {
        "targets": np.roll(ids, -1, axis=1),
        "weights": np.ones_like(ids, "float32"),
    }
    return features, labels


def _train_step(model, steps=2):
    import keras

    optimizer = keras.optimizers.Adam(1e-2)
    features, labels = _batch()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            logits = model(features, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels["targets"], tf.cast(logits, tf.float32)
                )
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
    return float(loss)


def _snapshot(model):
    return {v.path: np.array(v.numpy()) for v in model.variables}


@pytest.mark.filterwarnings("ignore:.*does not have a `quantize` method")
@pytest.mark.parametrize("quantize", [False, True])
def test_lora_trains_only_the_adapters(quantize):
    lm = llm_testing.tiny_llama()
    if quantize:
        lm.quantize("int8")
    model = SFTModel(lm)
    setup = finetune.apply(model, LORA, log=False)
    assert len(setup.lora_layers) == 14  # 7 projections x 2 decoder layers
    trainable = {v.path for v in model.trainable_variables}
    assert trainable and all(
        p.rsplit("/", 1)[-1].startswith("lora_kernel") for p in trainable
    )
    before = _snapshot(model)
    loss = _train_step(model)
    assert np.isfinite(loss)
    after = _snapshot(model)
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    assert changed <= trainable
    assert any(p.endswith("lora_kernel_b") for p in changed)
    if quantize:
        int8 = [v for v in model.variables if v.dtype == "int8"]
        assert int8 and all(np.array_equal(before[v.path], after[v.path]) for v in int8)


def test_adapters_round_trip_onto_a_fresh_base(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    lm = llm_testing.tiny_gpt2()
    base_weights = lm.get_weights()
    model = SFTModel(lm)
    finetune.apply(model, LORA, log=False)
    _train_step(model)
    features, _ = _batch()
    want = np.asarray(model(features))
    path = lora.save_adapters(model, str(tmp_path / lora.ADAPTERS_FILE), {"rank": 2})

    fresh_lm = llm_testing.tiny_gpt2()
    fresh_lm.set_weights(base_weights)
    fresh = SFTModel(fresh_lm)
    finetune.apply(fresh, LORA, log=False)
    assert not np.allclose(np.asarray(fresh(features)), want, atol=1e-5)
    assert lora.load_adapters(fresh, path)["rank"] == 2
    np.testing.assert_allclose(np.asarray(fresh(features)), want, atol=1e-5)
    # Merged into the kernels: the same outputs without the adapters.
    assert lora.merge(fresh) == 12
    np.testing.assert_allclose(np.asarray(fresh(features)), want, atol=1e-4)
