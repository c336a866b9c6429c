"""Chat templates, prompt masking and packing on hand-made conversations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from official.llm.configs.causal_lm import SFTDataConfig
from official.llm.data import chat_template, packing, sft_input, sft_records
from official.llm.data.sft_tokenize import ConversationEncoder
from official.llm.models.causal_lm_builder import read_tokenizer_dir
from tests.official.llm import llm_testing


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return read_tokenizer_dir(llm_testing.tokenizer_dir(tmp_path_factory.mktemp("t")))


def _encoder(tokenizer, name="default", train_on_all=False):
    return ConversationEncoder(
        tokenizer,
        chat_template.get_template(name),
        start_id=0,
        end_id=0,
        train_on_all=train_on_all,
    )


def _text(tokenizer, ids) -> str:
    return tokenizer.detokenize(tf.constant(np.asarray(ids, "int32")))


def _trained_text(tokenizer, ids, weights) -> list[str]:
    """The runs of consecutive weighted tokens, detokenized."""
    runs, current = [], []
    for token, weight in zip(np.asarray(ids), np.asarray(weights)):
        if weight:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [_text(tokenizer, run) for run in runs]


def test_default_template_renders_and_masks_everything_but_the_answers(tokenizer):
    roles = ["system", "user", "assistant", "user", "assistant"]
    contents = ["Be brief.", "2+2?", "4", "And 3+3?", "6"]
    ids, weights = _encoder(tokenizer).encode(tf.constant(roles), tf.constant(contents))
    assert _text(tokenizer, ids) == (
        "<|endoftext|><|system|>\nBe brief.\n<|user|>\n2+2?\n<|assistant|>\n4"
        "<|endoftext|><|user|>\nAnd 3+3?\n<|assistant|>\n6<|endoftext|>"
    )
    # Loss only on each assistant answer and the end token after it.
    assert _trained_text(tokenizer, ids, weights) == [
        "4<|endoftext|>",
        "6<|endoftext|>",
    ]
    assert weights[0] == 0  # the start token


def test_chatml_template_trains_on_the_end_of_turn_marker(tokenizer):
    ids, weights = _encoder(tokenizer, "chatml").encode(
        tf.constant(["user", "assistant"]), tf.constant(["hi", "hello"])
    )
    assert _text(tokenizer, ids) == (
        "<|endoftext|><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        "hello<|im_end|>\n<|endoftext|>"
    )
    assert _trained_text(tokenizer, ids, weights) == ["hello<|im_end|>\n<|endoftext|>"]


def test_text_examples_and_loss_on_all_weight_every_token(tokenizer):
    ids, weights = _encoder(tokenizer).encode(
        tf.constant(["text"]), tf.constant(["1+1=2"])
    )
    assert _text(tokenizer, ids) == "<|endoftext|>1+1=2<|endoftext|>"
    assert np.asarray(weights).tolist() == [0.0] + [1.0] * 6
    ids, weights = _encoder(tokenizer, train_on_all=True).encode(
        tf.constant(["user", "assistant"]), tf.constant(["a", "b"])
    )
    assert np.asarray(weights)[1:].min() == 1.0


def test_prompt_tokens_equal_the_training_prefix(tokenizer):
    encoder = _encoder(tokenizer)
    prompt = encoder.encode_prompt(tf.constant(["user"]), tf.constant(["2+2?"]))
    full, _ = encoder.encode(
        tf.constant(["user", "assistant"]), tf.constant(["2+2?", "4"])
    )
    assert np.array_equal(np.asarray(full)[: len(prompt)], np.asarray(prompt))


def test_template_from_a_preset_file_and_family(tmp_path):
    template = chat_template.ChatTemplate(
        "mine", "[{role}] ", " |", roles=(("assistant", "bot"),), stop=("|",)
    )
    chat_template.write_template(template, str(tmp_path))
    assert chat_template.get_template("auto", preset=str(tmp_path)) == template
    assert (
        chat_template.get_template("auto", tokenizer_class="QwenTokenizer").name
        == "chatml"
    )
    assert (
        chat_template.get_template("auto", tokenizer_class="GPT2Tokenizer").name
        == "default"
    )
    with pytest.raises(KeyError, match="Did you mean 'chatml'"):
        chat_template.get_template("chatm")


def test_jsonl_records_and_errors_name_the_line(tmp_path):
    path = llm_testing.write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            {"prompt": "p", "completion": "c"},
            {"text": "t"},
        ],
    )
    assert sft_records.read_jsonl([path]) == [
        (["user", "assistant"], ["q", "a"]),
        (["user", "assistant"], ["p", "c"]),
        (["text"], ["t"]),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"text": "x"})
        + "\n"
        + json.dumps({"messages": [{"role": "robot", "content": "x"}]})
        + "\n"
    )
    with pytest.raises(
        ValueError, match=r"bad.jsonl:2: messages\[0\].role must be one of"
    ):
        sft_records.read_jsonl([str(bad)])
    bad.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not valid JSON"):
        sft_records.read_jsonl([str(bad)])


def test_jsonl_converts_to_tfrecord_shards_or_to_nothing(tmp_path):
    records = [
        {"question": f"q{i}", "answer": f"a{i}"} if i % 2 else {"text": f"t{i}"}
        for i in range(5)
    ]
    path = llm_testing.write_jsonl(tmp_path / "in.jsonl", records)
    fields = sft_records.SFTFieldsConfig(prompt="question", completion="answer")
    prefix = str(tmp_path / "out" / "train")
    shards, count = sft_records.convert_jsonl([path], prefix, 2, fields)
    assert count == 5
    assert [p.rsplit("/", 1)[-1] for p in shards] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    # Dealt round robin: 0, 2, 4 to the first shard, 1, 3 to the second.
    assert sft_records.read_conversations(shards[:1], "tfrecord") == [
        (["text"], ["t0"]),
        (["text"], ["t2"]),
        (["text"], ["t4"]),
    ]
    assert sft_records.read_conversations(shards[1:], "tfrecord") == [
        (["user", "assistant"], ["q1", "a1"]),
        (["user", "assistant"], ["q3", "a3"]),
    ]
    # A bad line fails the conversion, naming it, and writes no shard.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        sft_records.convert_jsonl([str(bad)], str(tmp_path / "none" / "x"), 2)
    assert list((tmp_path / "none").iterdir()) == []


def _examples(lengths):
    def gen():
        start = 1
        for n in lengths:
            yield list(range(start, start + n)), [0.0] + [1.0] * (n - 1)
            start += n

    return tf.data.Dataset.from_generator(
        gen,
        output_signature=(
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.float32),
        ),
    )


def test_packing_never_splits_an_example_and_restarts_positions():
    rows = list(packing.pack(_examples([3, 2, 6, 4, 9]), length=6))
    segments = [r[0]["segment_ids"].numpy().tolist() for r in rows]
    positions = [r[0]["positions"].numpy().tolist() for r in rows]
    # 3+2 tokens -> inputs of 2 and 1; then 5 alone; then 3; then 8 cut to 6.
    assert segments == [
        [1, 1, 2, 0, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1, 1],
    ]
    assert positions[0] == [0, 1, 0, 0, 0, 0]
    first = rows[0]
    # Targets are the next token of the same example, never the next example's.
    assert first[0]["token_ids"].numpy().tolist() == [1, 2, 4, 0, 0, 0]
    assert first[1]["targets"].numpy().tolist() == [2, 3, 5, 0, 0, 0]
    assert first[1]["weights"].numpy().tolist() == [1, 1, 1, 0, 0, 0]
    # No weight on padding anywhere.
    for features, labels in rows:
        pad = features["segment_ids"].numpy() == 0
        assert not labels["weights"].numpy()[pad].any()


def test_padding_keeps_one_example_per_row():
    rows = list(packing.pad(_examples([3, 7]), length=4))
    assert [r[0]["padding_mask"].numpy().tolist() for r in rows] == [
        [1, 1, 0, 0],
        [1, 1, 1, 1],
    ]


@pytest.mark.parametrize("input_format, packed", [("jsonl", True), ("tfrecord", False)])
def test_pipeline_reads_jsonl_and_tfrecords(tmp_path, tokenizer, input_format, packed):
    records = llm_testing.qa_records(6)
    if input_format == "jsonl":
        path = llm_testing.write_jsonl(tmp_path / "d.jsonl", records)
    else:
        conversations = [sft_records.to_conversation(r, "test") for r in records]
        path = sft_records.write_sft_tfrecords(
            conversations, str(tmp_path / "d.tfrecord")
        )
    data = SFTDataConfig(
        input_path=path,
        input_format=input_format,
        global_batch_size=2,
        sequence_length=96,
        packing=packed,
        is_training=False,
        drop_remainder=False,
    )
    batches = list(sft_input.build_sft_dataset(data, _encoder(tokenizer)))
    features, labels = batches[0]
    keys = (
        {"token_ids", "segment_ids", "positions"}
        if packed
        else {"token_ids", "padding_mask"}
    )
    assert set(features) == keys
    assert features["token_ids"].shape[1] == 96
    trained = sum(float(tf.reduce_sum(b[1]["weights"])) for b in batches)
    # Each answer (1 or 2 digits) plus its end token: 1+2+...+6 -> 6 answers.
    answers = sum(len(str(a + 1)) + 1 for a in range(6))
    assert trained == answers


def test_data_config_refuses_unsupported_options():
    with pytest.raises(ValueError, match="input_format must be one of jsonl, tfrecord"):
        SFTDataConfig(input_path="a", input_format="image_folder").validate(
            "task.train_data"
        )
    with pytest.raises(ValueError, match="loss_on must be 'assistant' or 'all'"):
        SFTDataConfig(input_path="a", loss_on="prompt").validate("task.train_data")
