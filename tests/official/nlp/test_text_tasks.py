"""Text tasks: every data source, losses, a short pretrain -> fine-tune run."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official.base.config import ConfigError
from official.core import task_factory
from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment
from official.datasets import text_corpus
from official.nlp.configs.text_data import TextDataConfig
from official.nlp.dataloaders.text_input import build_text_dataset, convert_labels
from tools import convert_text_classification as converter

TINY_ENCODER = {
    "task.model.encoder.params.hidden_size": 16,
    "task.model.encoder.params.num_heads": 2,
    "task.model.encoder.params.intermediate_size": 32,
    "task.model.encoder.params.num_layers": 1,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("text_corpus"))
    text_corpus.write(
        out, corpus_sentences=200, train_sentences=40, validation_sentences=20
    )
    return out


def _classifier_config(corpus, **extra):
    overrides = {
        "task.preprocessing.vocab_file": os.path.join(corpus, "vocab.txt"),
        "task.train_data.input_path": os.path.join(corpus, "train.tsv"),
        "task.validation_data.input_path": os.path.join(corpus, "validation.tsv"),
        "task.train_data.global_batch_size": 8,
        "trainer.train_steps": 2,
        "trainer.steps_per_loop": 1,
        "trainer.checkpoint_interval": 2,
        "trainer.validation_interval": 2,
        **TINY_ENCODER,
        **extra,
    }
    return load_experiment_config(
        "bert_text_corpus_classifier", params_override=overrides
    )


def _first(dataset):
    return next(iter(dataset))


def test_every_file_format_gives_the_same_examples(corpus, tmp_path):
    with open(os.path.join(corpus, "train.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:9]
    csv_path, jsonl_path = str(tmp_path / "t.csv"), str(tmp_path / "t.jsonl")
    with open(csv_path, "w") as f:
        f.write("sentence,label\n" + "".join(f'"{s}",{lab}\n' for s, lab in rows))
    with open(jsonl_path, "w") as f:
        f.write(
            "".join(json.dumps({"sentence": s, "label": lab}) + "\n" for s, lab in rows)
        )
    tfrecords = str(tmp_path / "tfr")
    converter.convert_text_classification(
        os.path.join(corpus, "train.tsv"),
        tfrecords,
        label_names=["negative", "positive"],
        num_shards=1,
        shuffle=False,
    )
    config = _classifier_config(corpus)
    task = task_factory.get_task(config.task)
    packed = {}
    for name, path, file_format in (
        ("tsv", os.path.join(corpus, "train.tsv"), "tsv"),
        ("csv", csv_path, "csv"),
        ("jsonl", jsonl_path, "jsonl"),
        ("tfrecord", os.path.join(tfrecords, "train-*"), "tfrecord"),
    ):
        data = TextDataConfig(
            input_path=path,
            file_format=file_format,
            is_training=False,
            global_batch_size=8,
        )
        features, labels = _first(task.build_inputs(data))
        packed[name] = (features["input_word_ids"].numpy(), labels.numpy())
    expected_labels = [1 if lab == "positive" else 0 for _, lab in rows]
    for name, (ids, labels) in packed.items():
        assert labels.tolist() == expected_labels, name
        np.testing.assert_array_equal(ids, packed["tsv"][0], err_msg=name)
    summary = json.load(open(os.path.join(tfrecords, "summary-train.json")))
    assert summary["num_written"] == 40
    assert sum(summary["examples_per_class"].values()) == 40


def test_tfds_source_with_mock_data(corpus):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = _classifier_config(corpus)
    task = task_factory.get_task(config.task)
    data = TextDataConfig(
        tfds_name="glue/sst2",
        tfds_split="train",
        is_training=False,
        global_batch_size=4,
    )
    with tfds.testing.mock_data(num_examples=4):
        features, labels = _first(task.build_inputs(data))
    assert features["input_word_ids"].shape == (4, 24)
    assert labels.dtype == tf.int32


def test_labels_and_bad_inputs_are_named(corpus, tmp_path):
    assert convert_labels(["1", "0"], "class", [], "x").tolist() == [1, 0]
    with pytest.raises(ValueError, match="neither a class id nor a class name"):
        convert_labels(["maybe"], "class", ["no", "yes"], "x")
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\t1\n")
    data = TextDataConfig(input_path=str(bad), file_format="tsv", is_training=False)
    with pytest.raises(ValueError, match="no column 'sentence'"):
        build_text_dataset(data, lambda b, s: b, "class")
    with pytest.raises(ValueError, match="file_format must be one of"):
        TextDataConfig(file_format="parquet").validate("task.train_data")
    with pytest.raises(ConfigError, match="vocab_file is empty"):
        config = _classifier_config(corpus)
        config.task.preprocessing.vocab_file = ""
        task_factory.get_task(config.task).build_model()
    with pytest.raises(KeyError, match="Did you mean 'num_heads'"):
        _classifier_config(corpus, **{"task.model.encoder.params.num_head": 2})


def test_regression_loss_and_metrics(corpus):
    config = _classifier_config(corpus)
    config.task.model.num_classes = 1
    config.task.label_names = []
    task = task_factory.get_task(config.task)
    outputs = tf.constant([[1.0], [2.0], [4.0]])
    labels = tf.constant([1.0, 3.0, 4.0])
    assert float(task.build_losses(labels, outputs)) == pytest.approx(1 / 3)
    metrics = task.build_metrics(training=False)
    task.update_metrics(metrics, labels, outputs)
    assert [m.name for m in metrics] == ["pearson_corr", "spearman_corr"]
    assert float(metrics[1].result()) == pytest.approx(1.0)


@pytest.mark.slow  # two short training runs in process, ~25 s of CPU
def test_pretrain_then_finetune_from_the_checkpoint(corpus, tmp_path):
    mlm = load_experiment_config(
        "bert_text_corpus_mlm",
        params_override={
            "task.preprocessing.vocab_file": os.path.join(corpus, "vocab.txt"),
            "task.train_data.input_path": os.path.join(corpus, "corpus.txt"),
            "task.validation_data.input_path": os.path.join(corpus, "corpus.txt"),
            "task.train_data.global_batch_size": 8,
            "trainer.train_steps": 2,
            "trainer.steps_per_loop": 1,
            "trainer.checkpoint_interval": 2,
            "trainer.validation_interval": 2,
            "trainer.validation_steps": 1,
            **{
                k.replace("model.encoder", "encoder"): v
                for k, v in TINY_ENCODER.items()
            },
        },
    )
    logs = run_experiment(mlm, "train_and_eval", str(tmp_path / "mlm"))
    assert 0.0 <= logs["masked_lm_accuracy"] <= 1.0 and np.isfinite(logs["loss"])
    finetune = _classifier_config(
        corpus,
        **{
            "trainer.init_checkpoint": str(tmp_path / "mlm"),
            "trainer.init_checkpoint_modules": "backbone",
        },
    )
    logs = run_experiment(finetune, "train_and_eval", str(tmp_path / "cls"))
    assert {"accuracy", "f1", "matthews_corr"} <= set(logs)
