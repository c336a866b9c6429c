"""A tiny text classifier task and its SavedModel, for the export and server tests."""

import os

import keras
import tensorflow as tf

from official.core import task_factory
from official.core.config_loader import load_experiment_config
from official.datasets import text_corpus

TINY = {
    "task.model.encoder.params.hidden_size": 16,
    "task.model.encoder.params.num_heads": 2,
    "task.model.encoder.params.intermediate_size": 32,
    "task.model.encoder.params.num_layers": 1,
}


def tiny_text_task(root: str, pair: bool = False):
    """(config, task) of `bert_text_corpus_classifier` on a small corpus in
    `root`, shrunk to a 16-wide encoder; with `pair`, sentence pairs read
    from a TSV with columns sentence, sentence2, label."""
    text_corpus.write(
        root, corpus_sentences=50, train_sentences=40, validation_sentences=40
    )
    overrides = {
        "task.preprocessing.vocab_file": os.path.join(root, "vocab.txt"),
        "task.train_data.input_path": os.path.join(root, "train.tsv"),
        "task.validation_data.input_path": os.path.join(root, "validation.tsv"),
        **TINY,
    }
    if pair:
        for split in ("train", "validation"):
            lines = open(os.path.join(root, f"{split}.tsv")).read().splitlines()[1:]
            with open(os.path.join(root, f"{split}_pairs.tsv"), "w") as f:
                f.write("sentence\tsentence2\tlabel\n")
                for line in lines:
                    sentence, label = line.split("\t")
                    f.write(f"{sentence}\ti read it twice .\t{label}\n")
            overrides[f"task.{split}_data.input_path"] = os.path.join(
                root, f"{split}_pairs.tsv"
            )
            overrides[f"task.{split}_data.text_b_key"] = "sentence2"
    config = load_experiment_config(
        "bert_text_corpus_classifier", params_override=overrides
    )
    return config, task_factory.get_task(config.task)


def write_text_saved_model(task, model, path: str) -> list[str]:
    """Every serving signature of `task` into a SavedModel at `path`."""
    from serving import saved_model_export

    names = saved_model_export.write_saved_model(
        model, task.serving_signatures(model), path
    )
    if task.class_names():
        saved_model_export.write_labels(path, task.class_names())
    return names


def checkpoint(model, directory: str) -> str:
    return tf.train.Checkpoint(model=model).save(os.path.join(directory, "ckpt"))


def train(task, config, model, steps: int, learning_rate: float = 1e-3) -> float:
    """`steps` Adam steps of `model` on the task's training data; the last loss.

    Enough for the tiny classifier to fit its training sentences, so its
    validation probabilities are confident (as a trained model's are) and
    quantization parity measures more than noise around 0.5.
    """
    keras.utils.set_random_seed(0)
    optimizer = keras.optimizers.Adam(learning_rate)
    dataset = task.build_inputs(config.task.train_data).repeat().take(steps)

    @tf.function
    def step(features, labels):
        with tf.GradientTape() as tape:
            loss = task.build_losses(labels, model(features, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    loss = None
    for features, labels in dataset:
        loss = step(features, labels)
    return float(loss)
