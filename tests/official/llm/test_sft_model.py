"""SFTModel's packed rows and the generation graph, against keras-hub's own."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from official.llm import generation
from official.llm.models.sft_model import SFTModel, check_packable
from tests.official.llm import llm_testing

BUILDERS = {
    "gpt2": llm_testing.tiny_gpt2,
    "llama": llm_testing.tiny_llama,
    "smollm3": llm_testing.tiny_smollm3,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def lm(request):
    import keras

    keras.utils.set_random_seed(3)
    return BUILDERS[request.param]()


def test_a_packed_row_computes_each_example_as_alone(lm):
    model = SFTModel(lm)
    first, second = np.array([[5, 6, 7, 8]]), np.array([[9, 10, 11]])
    packed = model(
        {
            "token_ids": np.concatenate([first, second, [[0]]], axis=1),
            "segment_ids": np.array([[1, 1, 1, 1, 2, 2, 2, 0]]),
            "positions": np.array([[0, 1, 2, 3, 0, 1, 2, 0]]),
        }
    )
    alone = [
        model({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        for ids in (first, second)
    ]
    np.testing.assert_allclose(
        np.asarray(packed)[:, :7], np.concatenate(alone, axis=1), atol=1e-5
    )


def test_greedy_generation_matches_keras_hub_generate(lm):
    prompts = [[1, 2, 3], [4, 5], [6]]
    tokens, lengths = generation.generate_ids(
        lm,
        tf.ragged.constant(prompts),
        max_new_tokens=tf.constant([5, 5, 5]),
        temperature=tf.zeros([3]),
        top_k=tf.zeros([3], tf.int32),
        seed=tf.zeros([3], tf.int32),
        stop_ids=[39],
        pad_id=0,
    )
    lm.compile(sampler="greedy")
    for row, prompt in enumerate(prompts):
        length = len(prompt) + 5
        ids = np.zeros((1, length), "int32")
        ids[0, : len(prompt)] = prompt
        mask = (ids > 0).astype("int32")
        want = lm.generate(
            {"token_ids": ids, "padding_mask": mask}, stop_token_ids=None
        )
        want = np.asarray(want["token_ids"])[0, len(prompt) :]
        stop = np.flatnonzero(want == 39)
        want = want[: stop[0]] if len(stop) else want
        got = np.asarray(tokens)[row, : int(lengths[row])]
        assert got.tolist() == want.tolist()


def test_sampling_repeats_with_a_seed_and_top_k_one_is_greedy(lm):
    def run(temperature, top_k, seed):
        tokens, _ = generation.generate_ids(
            lm,
            tf.ragged.constant([[1, 2], [3]]),
            max_new_tokens=tf.constant([6, 6]),
            temperature=tf.fill([2], temperature),
            top_k=tf.fill([2], top_k),
            seed=tf.constant(seed),
            stop_ids=[39],
            pad_id=0,
        )
        return np.asarray(tokens).tolist()

    assert run(1.0, 0, [1, 2]) == run(1.0, 0, [1, 2])
    assert run(1.0, 1, [1, 2]) == run(0.0, 0, [0, 0])
    assert run(5.0, 0, [1, 2]) != run(5.0, 0, [7, 8])


def test_packing_is_refused_for_a_backbone_it_cannot_mask():
    class Other:
        backbone = object()

    with pytest.raises(ValueError, match="packing=false"):
        check_packable(Other())
