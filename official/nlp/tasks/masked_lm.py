"""Masked-LM pretraining of a BERT encoder on a text corpus."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from official.core.base_task import Task
from official.core.parity_measures import Bounds, tolerance_of_kind
from official.core.task_factory import register_task
from official.nlp.configs.masked_lm import MaskedLMTaskConfig
from official.nlp.configs.text_data import TextDataConfig
from official.nlp.dataloaders.mlm_masking import mask_batch
from official.nlp.dataloaders.text_input import build_text_dataset
from official.nlp.evaluation.text_metrics import MaskedLMAccuracy
from official.nlp.models.bert_pretrainer import BertPretrainer
from official.nlp.models.factory import build_encoder
from official.nlp.tasks.text_preprocessing import build_preprocessor
from official.nlp.tasks.text_signatures import text_signatures, word_ids_signature
from official.nlp.tokenization.bert_preprocessor import BertPreprocessor
from official.nlp.tokenization.vocabulary import SPECIAL_TOKENS

# Export of a pretrained encoder: its pooled and sequence outputs against
# Keras', relative to the largest reference value.
ENCODER_TOLERANCES = {
    "saved_model": Bounds(maximum={"max_rel_diff_pooled_output": 1e-4}),
    "none": Bounds(maximum={"max_rel_diff_pooled_output": 1e-3}),
    "onnx": Bounds(maximum={"max_rel_diff_pooled_output": 1e-3}),
    "float16": Bounds(maximum={"max_rel_diff_pooled_output": 1e-2}),
    "dynamic": Bounds(maximum={"max_rel_diff_pooled_output": 0.1}),
    "int8": Bounds(minimum={"min_cosine_pooled_output": 0.95}),
}


@register_task(MaskedLMTaskConfig)
class MaskedLMTask(Task):
    """BERT's masked-LM pretraining (no next-sentence prediction).

    Each batch of texts (one column, or a pair of columns) is tokenized,
    packed and masked in the input pipeline (`mask_batch`: `mask_rate` of the
    WordPieces, 80/10/10), with a stateless seed per batch. The loss is the
    cross-entropy of the masked WordPieces, averaged over them; the metric
    `masked_lm_accuracy`. The export is the encoder: `pooled_output` and
    `sequence_output` of raw strings or packed ids.
    """

    config: MaskedLMTaskConfig

    def __init__(self, config: MaskedLMTaskConfig):
        super().__init__(config)
        self._preprocessor: BertPreprocessor | None = None

    @property
    def preprocessor(self) -> BertPreprocessor:
        if self._preprocessor is None:
            self._preprocessor = build_preprocessor(self.config.preprocessing)
        return self._preprocessor

    def build_model(self) -> keras.Model:
        vocab_size = self.preprocessor.tokenizer.vocab_size
        return BertPretrainer(build_encoder(self.config.encoder, vocab_size))

    def _mask(self, batch: dict, seed: tf.Tensor) -> tuple:
        texts = [batch["text_a"]] + ([batch["text_b"]] if "text_b" in batch else [])
        features = self.preprocessor(texts)
        masking = self.config.masking
        tokenizer = self.preprocessor.tokenizer
        special = [tokenizer.vocabulary.index(t) for t in SPECIAL_TOKENS]
        masked = mask_batch(
            features["input_word_ids"],
            features["input_mask"],
            seed,
            vocab_size=tokenizer.vocab_size,
            special_ids=special,
            mask_id=tokenizer.special_ids["mask"],
            max_predictions=masking.max_predictions_per_seq,
            mask_rate=masking.mask_rate,
            mask_token_rate=masking.mask_token_rate,
            random_token_rate=masking.random_token_rate,
        )
        inputs = {
            "input_word_ids": masked["input_word_ids"],
            "input_mask": features["input_mask"],
            "input_type_ids": features["input_type_ids"],
            "masked_lm_positions": masked["masked_lm_positions"],
        }
        labels = {
            "masked_lm_ids": masked["masked_lm_ids"],
            "masked_lm_weights": masked["masked_lm_weights"],
        }
        return inputs, labels

    def build_inputs(
        self,
        data: TextDataConfig,
        input_context: tf.distribute.InputContext | None = None,
    ) -> tf.data.Dataset:
        return build_text_dataset(data, self._mask, "none", (), input_context)

    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        weights = tf.cast(labels["masked_lm_weights"], tf.float32)
        losses = keras.losses.sparse_categorical_crossentropy(
            tf.cast(labels["masked_lm_ids"], tf.int32),
            tf.cast(outputs, tf.float32),
            from_logits=True,
        )
        loss = tf.math.divide_no_nan(
            tf.reduce_sum(losses * weights), tf.reduce_sum(weights)
        )
        if aux_losses:
            loss += tf.add_n([tf.cast(aux, tf.float32) for aux in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        return [MaskedLMAccuracy()]

    # ---- export: the pretrained encoder ---------------------------------------

    def _outputs_fn(self, model: keras.Model):
        def outputs(features: dict) -> dict[str, tf.Tensor]:
            encoded = model.backbone(features, training=False)
            return {
                "pooled_output": tf.cast(encoded["pooled_output"], tf.float32),
                "sequence_output": tf.cast(encoded["sequence_output"], tf.float32),
            }

        return outputs

    def serving_signatures(self, model: keras.Model) -> dict[str, tuple]:
        """The encoder's outputs of `text` (or `text_pair`), `tf_example`,
        `encoder_inputs` and `input_word_ids` (see `text_signatures`)."""
        data = self.config.validation_data
        return text_signatures(
            self._outputs_fn(model), self.preprocessor, data.text_a_key, data.text_b_key
        )

    def tflite_signature(self, model: keras.Model) -> tuple:
        return word_ids_signature(self._outputs_fn(model), self.preprocessor)

    def serving_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        """Packed validation ids `[N, seq_length]`; labels are their masks."""
        data = self.config.validation_data.copy()
        data.check_source("task.validation_data")
        data.global_batch_size = num_examples
        data.drop_remainder = False
        dataset = build_text_dataset(
            data,
            lambda batch, seed: self.preprocessor(
                [batch["text_a"]] + ([batch["text_b"]] if "text_b" in batch else [])
            ),
            "none",
        )
        packed = next(iter(dataset))
        return packed["input_word_ids"].numpy(), packed["input_mask"].numpy()

    def parity_measures(
        self, reference: dict, candidate: dict, labels: Any
    ) -> dict[str, float]:
        """Relative max difference and the smallest cosine of `pooled_output`."""
        ref = np.asarray(reference["pooled_output"], np.float64)
        cand = np.asarray(candidate["pooled_output"], np.float64)
        scale = max(1.0, float(np.max(np.abs(ref))))
        cosine = np.sum(ref * cand, -1) / np.maximum(
            np.linalg.norm(ref, axis=-1) * np.linalg.norm(cand, axis=-1), 1e-12
        )
        return {
            "max_rel_diff_pooled_output": float(np.max(np.abs(cand - ref))) / scale,
            "min_cosine_pooled_output": float(np.min(cosine)),
        }

    def parity_reference_measures(
        self, reference: dict, labels: Any
    ) -> dict[str, float]:
        """The mean norm of the reference's `pooled_output`."""
        pooled = np.asarray(reference["pooled_output"], np.float64)
        return {
            "mean_norm_pooled_output": float(np.mean(np.linalg.norm(pooled, axis=-1)))
        }

    def parity_tolerance(self, kind: str) -> Bounds:
        return tolerance_of_kind(ENCODER_TOLERANCES, kind, "text encoder")
