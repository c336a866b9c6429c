"""SFT data from TFDS splits the test builds and prepares in tmp_path (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from official.llm.configs.causal_lm import SFTDataConfig, SFTFieldsConfig
from official.llm.data import chat_template, sft_input
from official.llm.data.sft_tokenize import ConversationEncoder
from official.llm.models.causal_lm_builder import read_tokenizer_dir
from tests.official.llm import llm_testing

tfds = pytest.importorskip("tensorflow_datasets")


def _chats(n):
    for a in range(n):
        yield {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"What is {a}+1?"},
                {"role": "assistant", "content": str(a + 1)},
            ]
        }


class TinySftChat(tfds.core.GeneratorBasedBuilder):
    """Conversations as a `messages` sequence of {role, content}."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "messages": tfds.features.Sequence(
                        {"role": tfds.features.Text(), "content": tfds.features.Text()}
                    )
                }
            )
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {
            "train": self._generate_examples(6),
            "validation": self._generate_examples(3),
        }

    def _generate_examples(self, n):
        yield from enumerate(_chats(n))


class TinySftQa(tfds.core.GeneratorBasedBuilder):
    """Question/answer text features (renamed with `fields`)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {"question": tfds.features.Text(), "answer": tfds.features.Text()}
            )
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for a in range(5):
            yield a, {"question": f"What is {a}+2?", "answer": str(a + 2)}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    for builder_cls in (TinySftChat, TinySftQa):
        builder_cls(data_dir=str(root)).download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False)
        )
    tokenizer = read_tokenizer_dir(llm_testing.tokenizer_dir(root))
    encoder = ConversationEncoder(
        tokenizer, chat_template.get_template("default"), start_id=0, end_id=0
    )
    return root, encoder


def _rows(data, encoder):
    batches = list(sft_input.build_sft_dataset(data, encoder))
    return [
        {k: np.asarray(v) for k, v in {**features, **labels}.items()}
        for features, labels in batches
    ]


def _data(**kwargs):
    return SFTDataConfig(
        global_batch_size=2,
        sequence_length=96,
        is_training=False,
        drop_remainder=False,
        **kwargs,
    )


def _same_rows(a, b):
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.mark.slow
def test_tfds_messages_give_the_rows_of_the_same_jsonl(prepared, tmp_path):
    root, encoder = prepared
    from_tfds = _data(
        tfds_name="tiny_sft_chat", tfds_split="train", tfds_data_dir=str(root)
    )
    from_tfds.validate("train_data")
    # TFDS shuffles examples when it prepares a split: the JSONL file gets
    # them in the order the split is read.
    conversations = list(sft_input.iter_conversations(from_tfds))
    want = [
        ([m["role"] for m in c["messages"]], [m["content"] for m in c["messages"]])
        for c in _chats(6)
    ]
    assert sorted(conversations) == sorted(want)
    path = llm_testing.write_jsonl(
        tmp_path / "chats.jsonl",
        [
            {"messages": [{"role": r, "content": c} for r, c in zip(roles, contents)]}
            for roles, contents in conversations
        ],
    )
    _same_rows(_rows(from_tfds, encoder), _rows(_data(input_path=path), encoder))


def _qa(root, **kwargs):
    return _data(
        tfds_name="tiny_sft_qa",
        tfds_split="train",
        tfds_data_dir=str(root),
        fields=SFTFieldsConfig(prompt="question", completion="answer"),
        packing=False,
        **kwargs,
    )


def test_tfds_fields_name_the_prompt_and_completion(prepared):
    root, _ = prepared
    conversations = sorted(sft_input.iter_conversations(_qa(root)))
    assert conversations == [
        (["user", "assistant"], [f"What is {a}+2?", str(a + 2)]) for a in range(5)
    ]


@pytest.mark.slow
def test_tfds_and_renamed_jsonl_give_the_same_rows(prepared, tmp_path):
    root, encoder = prepared
    from_tfds = _qa(root)
    records = [
        {"question": contents[0], "answer": contents[1]}
        for _, contents in sft_input.iter_conversations(from_tfds)
    ]
    # The same names rename JSON keys.
    path = llm_testing.write_jsonl(tmp_path / "renamed.jsonl", records)
    _same_rows(
        _rows(from_tfds, encoder),
        _rows(_data(input_path=path, fields=from_tfds.fields, packing=False), encoder),
    )


def test_tfds_without_the_named_fields_is_refused(prepared):
    root, encoder = prepared
    data = _data(tfds_name="tiny_sft_qa", tfds_split="train", tfds_data_dir=str(root))
    with pytest.raises(ValueError, match=r"features \['answer', 'question'\].*fields"):
        sft_input.build_sft_dataset(data, encoder)
    data.fields = SFTFieldsConfig(messages="answer")
    with pytest.raises(ValueError, match="'answer' must be a Sequence"):
        sft_input.build_sft_dataset(data, encoder)


def test_evaluation_prompts_come_from_a_tfds_validation_split(prepared, tmp_path):
    from official.llm.tasks.causal_lm import CausalLMTask

    root, _ = prepared
    config = llm_testing.task_config(tmp_path)
    config.validation_data.input_path = ""
    config.validation_data.tfds_name = "tiny_sft_chat"
    config.validation_data.tfds_split = "validation"
    config.validation_data.tfds_data_dir = str(root)
    config.validate()
    prompts = CausalLMTask(config).evaluation_prompts(3)
    assert sorted(prompts) == [
        (["system", "user"], ["Answer briefly.", f"What is {a}+1?"], str(a + 1))
        for a in range(3)
    ]
