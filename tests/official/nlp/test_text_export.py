"""String-in SavedModel parity with the Python pipeline; the TFLite tensor path."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official.nlp.tasks import text_parity
from tests.official.nlp.text_export_fixtures import (
    checkpoint,
    tiny_text_task,
    train,
    write_text_saved_model,
)


def _python_pipeline(task, model, texts):
    features = task.preprocessor([tf.constant(t) for t in texts])
    logits = model(features, training=False).numpy()
    probabilities = tf.nn.softmax(logits).numpy()
    return {
        "logits": logits,
        "probabilities": probabilities,
        "classes": logits.argmax(-1),
    }


@pytest.mark.parametrize(
    "pair", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["single", "pair"]
)
def test_string_signatures_match_the_python_pipeline(tmp_path, pair):
    _, task = tiny_text_task(str(tmp_path / "data"), pair=pair)
    model = task.build_model()
    path = str(tmp_path / "saved_model")
    names = write_text_saved_model(task, model, path)
    string_signature = "text_pair" if pair else "text"
    assert names[0] == string_signature and "serving_default" in names
    texts, labels = task.serving_texts(16)
    expected = _python_pipeline(task, model, texts)
    loaded = tf.saved_model.load(path)
    if pair:
        out = loaded.signatures["text_pair"](
            text_a=tf.constant(texts[0]), text_b=tf.constant(texts[1])
        )
    else:
        out = loaded.signatures["text"](text=tf.constant(texts[0]))
    out = {k: v.numpy() for k, v in out.items()}
    measures = text_parity.classification_measures(expected, out, labels)
    assert text_parity.tolerance("saved_model", regression=False).check(measures) == []
    names = task.class_names()
    assert [n.decode() for n in out["class_names"]] == [
        names[c] for c in out["classes"]
    ]
    # tf.Example, packed tensors and word ids alone give the same answers.
    keys = ["sentence", "sentence2"] if pair else ["sentence"]
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[t[i]]))
                    for key, t in zip(keys, texts)
                }
            )
        ).SerializeToString()
        for i in range(len(texts[0]))
    ]
    packed = task.preprocessor([tf.constant(t) for t in texts])
    for result in (
        loaded.signatures["tf_example"](examples=tf.constant(examples)),
        loaded.signatures["encoder_inputs"](**packed),
        loaded.signatures["input_word_ids"](input_word_ids=packed["input_word_ids"]),
    ):
        np.testing.assert_allclose(
            result["probabilities"].numpy(), expected["probabilities"], atol=1e-5
        )


def test_string_path_has_no_tflite_file_and_names_the_ops(tmp_path):
    _, task = tiny_text_task(str(tmp_path / "data"))
    model = task.build_model()
    message = task.string_tflite_refusal(model)
    assert (
        "FastBertNormalize" in message and "FastWordpieceTokenizeWithOffsets" in message
    )
    assert "input_word_ids" in message


def test_export_of_the_tensor_path_with_tflite_parity(tmp_path):
    from serving.export import export_task

    _, task = tiny_text_task(str(tmp_path / "data"))
    model = task.build_model()
    prefix = checkpoint(model, str(tmp_path / "run"))
    report = export_task(
        task,
        prefix,
        str(tmp_path / "export"),
        input_types=["input_word_ids"],
        quantizations=["none"],
        num_parity_examples=16,
    )
    assert report["parity"]["passed"]
    artifacts = report["parity"]["artifacts"]
    assert artifacts["model_float32.tflite"]["top1_agreement"] == 1.0
    labels = open(os.path.join(str(tmp_path / "export"), "labels.txt")).read().split()
    assert labels == ["negative", "positive"]
    parity = json.load(open(os.path.join(str(tmp_path / "export"), "parity.json")))
    assert parity["artifacts"]["saved_model:input_word_ids"]["passed"]


@pytest.mark.slow  # ~130 s on 2 shared cores: 150 training steps, two conversions
def test_full_integer_int8_tflite_export_passes_parity(tmp_path):
    """The int8 file's attention keeps the resolution of its scores: the
    masked softmax puts no -1e9 into the int8 range (see
    official/modeling/layers/masked_attention.py); with Keras' masked softmax
    this file agreed with Keras on 0.43 of the examples."""
    from ai_edge_litert.interpreter import Interpreter

    from serving.export import export_task

    config, task = tiny_text_task(str(tmp_path / "data"))
    model = task.build_model()
    assert train(task, config, model, steps=150) < 0.1
    export_dir = str(tmp_path / "export")
    report = export_task(
        task,
        checkpoint(model, str(tmp_path / "run")),
        export_dir,
        input_types=["input_word_ids"],
        quantizations=["none", "int8"],
        num_parity_examples=24,
        num_calibration_examples=16,
    )
    parity = report["parity"]
    assert parity["passed"], parity
    int8 = parity["artifacts"]["model_int8.tflite"]
    assert int8["top1_agreement"] >= 0.9 and int8["passed"], int8
    assert parity["calibration"]["disjoint_from_parity_examples"]
    # The attention's softmax runs in int8 kernels, not in float between
    # a dequantize and a quantize.
    interpreter = Interpreter(os.path.join(export_dir, "model_int8.tflite"))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    kernels = {
        (op["op_name"], tensors[op["outputs"][0]]["dtype"].__name__)
        for op in interpreter._get_ops_details()
    }
    for name in ("EXP", "SUM", "DIV", "REDUCE_MAX", "REDUCE_MIN"):
        assert (name, "int8") in kernels and (name, "float32") not in kernels, kernels


def test_masked_lm_task_exports_the_encoder(tmp_path):
    from official.core import task_factory
    from official.core.config_loader import load_experiment_config
    from official.datasets import text_corpus

    root = str(tmp_path / "data")
    text_corpus.write(
        root, corpus_sentences=20, train_sentences=4, validation_sentences=4
    )
    corpus = os.path.join(root, "corpus.txt")
    config = load_experiment_config(
        "bert_text_corpus_mlm",
        params_override={
            "task.preprocessing.vocab_file": os.path.join(root, "vocab.txt"),
            "task.train_data.input_path": corpus,
            "task.validation_data.input_path": corpus,
            "task.encoder.params.hidden_size": 16,
            "task.encoder.params.num_heads": 2,
            "task.encoder.params.intermediate_size": 32,
            "task.encoder.params.num_layers": 1,
        },
    )
    task = task_factory.get_task(config.task)
    model = task.build_model()
    ids, masks = task.serving_examples(8)
    assert ids.shape == (8, 24) and masks.shape == (8, 24)
    fn, (spec,) = task.tflite_signature(model)
    assert spec.shape == (1, 24)
    reference = {k: v.numpy() for k, v in fn(tf.constant(ids[:1])).items()}
    text_fn, _ = task.serving_signatures(model)["text"]
    sentence = open(corpus).readline().strip()
    from_text = {k: v.numpy() for k, v in text_fn(tf.constant([sentence])).items()}
    packed = task.preprocessor(tf.constant([sentence]))["input_word_ids"].numpy()
    np.testing.assert_array_equal(packed, ids[:1])
    measures = task.parity_measures(reference, from_text, masks[:1])
    assert measures["max_rel_diff_pooled_output"] < 1e-6
    assert task.parity_tolerance("int8").check(measures) == []
    assert (
        task.parity_reference_measures(reference, masks[:1])["mean_norm_pooled_output"]
        > 0
    )


@pytest.mark.parametrize(
    "pair", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["single", "pair"]
)
def test_export_checks_every_signature_on_its_own_inputs(tmp_path, pair):
    """The exporter's parity feeds raw strings to `text` / `text_pair`,
    tf.Examples to `tf_example` and three tensors to `encoder_inputs`."""
    from serving.export import export_task

    _, task = tiny_text_task(str(tmp_path / "data"), pair=pair)
    model = task.build_model()
    prefix = checkpoint(model, str(tmp_path / "run"))
    report = export_task(
        task,
        prefix,
        str(tmp_path / "export"),
        quantizations=["none"],
        num_parity_examples=8,
    )
    parity = report["parity"]
    assert parity["passed"], parity
    strings = "text_pair" if pair else "text"
    for name in (strings, "tf_example", "encoder_inputs", "input_word_ids"):
        assert parity["artifacts"][f"saved_model:{name}"]["top1_agreement"] == 1.0
    assert parity["signature_agreement"]["reference"] == strings
    inputs = task.parity_signature_inputs(8)
    assert inputs[strings][0].dtype == object and len(inputs[strings][0]) == 8
    assert [a.shape[0] for a in inputs["encoder_inputs"]] == [8, 8, 8]
