"""Sentence (pair) classification and regression on a BERT encoder."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from official.core.base_task import Task
from official.core.task_factory import register_task
from official.nlp.configs.sentence_prediction import SentencePredictionTaskConfig
from official.nlp.configs.text_data import TextDataConfig
from official.nlp.dataloaders.text_input import build_text_dataset
from official.nlp.encoders.bert_encoder import INPUT_NAMES
from official.nlp.evaluation import text_metrics
from official.nlp.models.bert_classifier import BertClassifier
from official.nlp.models.factory import build_encoder
from official.nlp.tasks import text_parity
from official.nlp.tasks.text_preprocessing import build_preprocessor
from official.nlp.tasks.text_signatures import (
    string_path_custom_ops,
    text_signatures,
    word_ids_signature,
)
from official.nlp.tokenization.bert_preprocessor import BertPreprocessor


@register_task(SentencePredictionTaskConfig)
class SentencePredictionTask(Task):
    """Classifies one sentence or a sentence pair (or regresses a score).

    Inputs are raw strings from text files, TFRecords or TFDS
    (`TextDataConfig`), tokenized and packed per batch inside the input
    pipeline by the same `BertPreprocessor` the export puts in the
    SavedModel. Classification: softmax cross-entropy; metrics accuracy, F1
    (`f1_average`) and Matthews correlation. Regression (`num_classes=1`):
    mean squared error; metrics Pearson and (evaluation) Spearman.
    """

    config: SentencePredictionTaskConfig

    def __init__(self, config: SentencePredictionTaskConfig):
        super().__init__(config)
        self._preprocessor: BertPreprocessor | None = None

    @property
    def preprocessor(self) -> BertPreprocessor:
        """Tokenizer and packer of `task.preprocessing` (built once)."""
        if self._preprocessor is None:
            self._preprocessor = build_preprocessor(self.config.preprocessing)
        return self._preprocessor

    @property
    def is_regression(self) -> bool:
        return self.config.model.num_classes == 1

    def build_model(self) -> keras.Model:
        model_config = self.config.model
        encoder = build_encoder(
            model_config.encoder, self.preprocessor.tokenizer.vocab_size
        )
        return BertClassifier(
            encoder, model_config.num_classes, dropout_rate=model_config.dropout_rate
        )

    def _pack(self, batch: dict, seed: tf.Tensor | None = None) -> tuple:
        texts = [batch["text_a"]] + ([batch["text_b"]] if "text_b" in batch else [])
        return self.preprocessor(texts), batch["label"]

    def build_inputs(
        self,
        data: TextDataConfig,
        input_context: tf.distribute.InputContext | None = None,
    ) -> tf.data.Dataset:
        return build_text_dataset(
            data,
            self._pack,
            "score" if self.is_regression else "class",
            self.config.label_names,
            input_context,
        )

    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        outputs = tf.cast(outputs, tf.float32)
        if self.is_regression:
            loss = tf.reduce_mean(
                tf.square(outputs[:, 0] - tf.cast(tf.reshape(labels, [-1]), tf.float32))
            )
        else:
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    tf.cast(labels, tf.int32), outputs, from_logits=True
                )
            )
        if aux_losses:
            loss += tf.add_n([tf.cast(aux, tf.float32) for aux in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        if self.is_regression:
            metrics = [text_metrics.PearsonCorrelation()]
            if not training:  # Ranks need the whole evaluation.
                metrics.append(text_metrics.SpearmanCorrelation())
            return metrics
        num_classes = self.config.model.num_classes
        return [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            text_metrics.F1Score(num_classes, average=self.config.f1_average),
            text_metrics.MatthewsCorrelation(num_classes),
        ]

    def update_metrics(self, metrics: list, labels: Any, outputs: Any) -> None:
        if self.is_regression:
            outputs = outputs[:, 0]
        super().update_metrics(metrics, labels, outputs)

    # ---- export -----------------------------------------------------------

    def class_names(self) -> list[str]:
        """`task.label_names` (labels.txt beside the exports); empty when unset."""
        return list(self.config.label_names)

    def _outputs_fn(self, model: keras.Model):
        names = self.class_names()

        def outputs(features: dict) -> dict[str, tf.Tensor]:
            logits = tf.cast(model(features, training=False), tf.float32)
            if self.is_regression:
                return {"outputs": logits[:, 0]}
            classes = tf.argmax(logits, axis=-1, output_type=tf.int32)
            result = {
                "logits": logits,
                "probabilities": tf.nn.softmax(logits, axis=-1),
                "classes": classes,
            }
            if names:
                result["class_names"] = tf.gather(tf.constant(names), classes)
            return result

        return outputs

    def _numeric_outputs_fn(self, model: keras.Model):
        outputs_fn = self._outputs_fn(model)

        def outputs(features: dict) -> dict[str, tf.Tensor]:
            result = outputs_fn(features)
            result.pop("class_names", None)  # Strings: not in TFLite.
            return result

        return outputs

    def serving_signatures(self, model: keras.Model) -> dict[str, tuple]:
        """`text` (or `text_pair`), `tf_example`, `encoder_inputs`,
        `input_word_ids`; see `official/nlp/tasks/text_signatures.py`.

        Classification returns `logits`, `probabilities`, `classes` and, with
        `label_names`, `class_names`; regression returns `outputs`.
        """
        data = self.config.validation_data
        return text_signatures(
            self._outputs_fn(model), self.preprocessor, data.text_a_key, data.text_b_key
        )

    def tflite_signature(self, model: keras.Model) -> tuple:
        """int32 `[1, seq_length]` packed ids (the tensor path)."""
        return word_ids_signature(self._numeric_outputs_fn(model), self.preprocessor)

    def string_tflite_refusal(self, model: keras.Model) -> str:
        """Why the raw-string signature has no TFLite file: the tokenizer's
        tensorflow-text ops, which are neither TFLite builtins nor Flex ops."""
        name, (fn, spec) = next(iter(self.serving_signatures(model).items()))
        ops = string_path_custom_ops(fn, spec)
        if not ops:
            return ""
        return (
            f"The {name!r} signature tokenizes with tensorflow-text ops "
            f"{', '.join(ops)}, which TFLite cannot run (no builtin, no Flex "
            f"kernel); TFLite gets the `input_word_ids` tensor path instead."
        )

    def serving_texts(self, num_examples: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Raw validation strings (one array per sentence column) and labels."""
        data = self.config.validation_data.copy()
        data.check_source("task.validation_data")
        data.global_batch_size = num_examples
        data.drop_remainder = False
        dataset = build_text_dataset(
            data,
            lambda batch, seed: batch,
            "score" if self.is_regression else "class",
            self.config.label_names,
        )
        batch = next(iter(dataset))
        texts = [batch["text_a"].numpy()]
        if "text_b" in batch:
            texts.append(batch["text_b"].numpy())
        return texts, batch["label"].numpy()

    def parity_signature_inputs(self, num_examples: int) -> dict[str, list[np.ndarray]]:
        """Every signature's inputs for the parity examples: the raw strings
        (`text` / `text_pair`), tf.Examples holding them (`tf_example`), and
        the packed tensors (`encoder_inputs`, `input_word_ids`)."""
        texts, _ = self.serving_texts(num_examples)
        packed = self.preprocessor([tf.constant(t) for t in texts])
        data = self.config.validation_data
        keys = [data.text_a_key] + ([data.text_b_key] if data.text_b_key else [])
        examples = []
        for row in zip(*texts, strict=True):
            feature = {
                key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
                for key, value in zip(keys, row, strict=True)
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            examples.append(example.SerializeToString())
        strings = "text_pair" if data.text_b_key else "text"
        return {
            strings: [np.asarray(t, dtype=object) for t in texts],
            "tf_example": [np.asarray(examples, dtype=object)],
            "encoder_inputs": [packed[name].numpy() for name in INPUT_NAMES],
            "input_word_ids": [packed["input_word_ids"].numpy()],
        }

    def serving_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        """Packed validation ids (int32 `[N, seq_length]`) and labels, in the
        format of `tflite_signature` and the `input_word_ids` signature."""
        texts, labels = self.serving_texts(num_examples)
        packed = self.preprocessor([tf.constant(t) for t in texts])
        return packed["input_word_ids"].numpy(), labels

    # ---- parity (export) ----------------------------------------------------

    def parity_measures(
        self, reference: dict, candidate: dict, labels: Any
    ) -> dict[str, float]:
        """`text_parity` classification or regression measures."""
        if self.is_regression:
            return text_parity.regression_measures(reference, candidate, labels)
        return text_parity.classification_measures(reference, candidate, labels)

    def parity_reference_measures(
        self, reference: dict, labels: Any
    ) -> dict[str, float]:
        if self.is_regression:
            return text_parity.regression_reference_measures(reference, labels)
        return text_parity.classification_reference_measures(reference, labels)

    def parity_tolerance(self, kind: str):
        """`text_parity.tolerance(kind, regression)`."""
        return text_parity.tolerance(kind, self.is_regression)
