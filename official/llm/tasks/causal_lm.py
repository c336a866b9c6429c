"""Causal-LM fine-tuning: keras-hub models on Garden's trainer.

`CausalLMTask` builds a keras-hub causal LM (a preset directory or a named
architecture, `official/llm/models/causal_lm_builder.py`) wrapped in
`SFTModel` (packed or padded rows), the SFT input pipeline
(`official/llm/data/sft_input.py`: chat template, tokenization and packing in
tf.data, loss weights on the assistant's tokens only), a loss averaged over
the weighted target tokens, and perplexity and token accuracy. Every
evaluation also generates completions of the first
`task.generation.num_prompts` validation prompts (`eval_details`): they are
logged and written to `eval_results.json` with exact-match and token-F1
against the references. Full fine-tuning, LoRA (`trainer.finetune.lora`)
and LoRA on an int8 base (`task.model.quantize=int8`), mixed precision and
gradient accumulation are the trainer's.

Export: `serving_signatures` gives a `generate` signature (prompt strings
and per-prompt settings in, completions out) and `generate_chat` (whole
conversations in); `tools/export_llm.py` writes them with the merged
keras-hub preset and checks greedy parity.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from official.core import parity_measures
from official.core.base_task import Task
from official.core.experiment_config import DataConfig
from official.core.task_factory import register_task
from official.llm.configs.causal_lm import CausalLMTaskConfig, SFTDataConfig
from official.llm.data import sft_input, sft_records
from official.llm.data.sft_tokenize import ConversationEncoder
from official.llm.export import llm_export
from official.llm.models import causal_lm_builder
from official.llm.models.sft_model import SFTModel, check_packable
from official.llm.tasks import lm_metrics
from official.llm.tasks.lm_generator import LMGenerator

# What an exported `generate` must meet against the in-process model, on the
# validation prompts, decoding greedily: the same tokens for every prompt.
GENERATE_PARITY = parity_measures.Bounds(minimum={"token_agreement": 1.0})


@register_task(CausalLMTaskConfig)
class CausalLMTask(Task):
    """Supervised fine-tuning (or pretraining) of a keras-hub causal LM."""

    config: CausalLMTaskConfig

    def __init__(self, config: CausalLMTaskConfig):
        super().__init__(config)
        self._preprocessor = None
        self._generator = None
        self._prompts = None
        self.last_generations: list[dict[str, Any]] = []

    # ---- model and data ---------------------------------------------------

    def preprocessor(self):
        """The keras-hub preprocessor (tokenizer, start and end tokens)."""
        if self._preprocessor is None:
            self._preprocessor = causal_lm_builder.load_preprocessor(self.config.model)
        return self._preprocessor

    def encoder(
        self, data: SFTDataConfig | None = None, preprocessor=None
    ) -> ConversationEncoder:
        """The conversation encoder; `data.loss_on` decides what trains.

        With the tokenizer of `preprocessor` (a model's own, for export),
        else of the task's.
        """
        preprocessor = preprocessor or self.preprocessor()
        ids = causal_lm_builder.special_token_ids(preprocessor)
        return ConversationEncoder(
            preprocessor.tokenizer,
            causal_lm_builder.load_template(self.config.model, preprocessor.tokenizer),
            start_id=ids["start"],
            end_id=ids["end"],
            train_on_all=data is not None and data.loss_on == "all",
        )

    def build_model(self) -> keras.Model:
        lm = causal_lm_builder.build_causal_lm(self.config.model)
        if self.config.train_data.packing or self.config.validation_data.packing:
            check_packable(lm)
        model = SFTModel(lm)
        tokens = np.ones((1, 4), "int32")
        model({"token_ids": tokens, "padding_mask": tokens})
        self._generator = None
        return model

    def build_inputs(
        self, data: DataConfig, input_context: tf.distribute.InputContext | None = None
    ) -> tf.data.Dataset:
        if not isinstance(data, SFTDataConfig):
            raise TypeError(
                f"CausalLMTask reads SFTDataConfig splits; received "
                f"{type(data).__name__}."
            )
        ids = causal_lm_builder.special_token_ids(self.preprocessor())
        return sft_input.build_sft_dataset(
            data, self.encoder(data), input_context, pad_id=ids["pad"]
        )

    def build_losses(
        self, labels: Any, outputs: Any, aux_losses: Any = None
    ) -> tf.Tensor:
        """Cross-entropy averaged over the weighted target tokens of the batch."""
        losses, weights = lm_metrics.token_losses(labels, outputs)
        loss = tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        if aux_losses:
            loss += tf.add_n([tf.cast(aux, tf.float32) for aux in aux_losses])
        return loss

    def build_metrics(self, training: bool = True) -> list[keras.metrics.Metric]:
        return [lm_metrics.Perplexity(), lm_metrics.TokenAccuracy()]

    # ---- generation report ------------------------------------------------

    def generator(self, model: keras.Model) -> LMGenerator:
        """The generator of `model` (an `SFTModel`), made once per model."""
        if self._generator is None or self._generator.lm is not model.causal_lm:
            ids = causal_lm_builder.special_token_ids(self.preprocessor())
            self._generator = LMGenerator(
                model.causal_lm,
                self.encoder(preprocessor=model.causal_lm.preprocessor),
                pad_id=ids["pad"],
                max_new_tokens_cap=self.config.generation.max_new_tokens,
            )
        return self._generator

    def evaluation_prompts(self, limit: int) -> list[tuple[list, list, str]]:
        """(roles, contents, reference) of the first `limit` validation
        conversations that end in an assistant turn."""
        found = []
        for roles, contents in sft_input.iter_conversations(
            self.config.validation_data
        ):
            split = sft_records.split_prompt(roles, contents)
            if split is not None:
                found.append(split)
            if len(found) >= limit:
                break
        return found

    def eval_details(self, model: keras.Model) -> dict[str, Any]:
        """Completions of the first `generation.num_prompts` validation
        prompts, with mean exact-match and token-F1 against the references."""
        settings = self.config.generation
        if not settings.num_prompts:
            return {}
        if self._prompts is None:
            self._prompts = self.evaluation_prompts(settings.num_prompts)
        if not self._prompts:
            logging.warning(
                "No validation conversation ends in an assistant turn: no "
                "generation report."
            )
            return {}
        completions = self.generator(model).complete(
            [(roles, contents) for roles, contents, _ in self._prompts],
            settings.max_new_tokens,
            settings.temperature,
            settings.top_k,
            settings.seed,
        )
        rows = []
        for (_, contents, reference), completion in zip(self._prompts, completions):
            rows.append(
                {
                    "prompt": contents[-1],
                    "completion": completion,
                    "reference": reference,
                    "exact_match": lm_metrics.exact_match(completion, reference),
                    "token_f1": lm_metrics.token_f1(completion, reference),
                }
            )
        self.last_generations = rows
        return {
            "exact_match": float(np.mean([r["exact_match"] for r in rows])),
            "token_f1": float(np.mean([r["token_f1"] for r in rows])),
            "generations": rows,
        }

    def eval_report(self, logs: dict[str, float]) -> str:
        """The generated completions, one line each."""
        del logs
        return "\n".join(
            f"[{'ok' if r['exact_match'] else '--'}] {r['prompt']!r} -> "
            f"{r['completion']!r} (reference {r['reference']!r})"
            for r in self.last_generations
        )

    # ---- export -----------------------------------------------------------

    def serving_signatures(self, model: keras.Model) -> dict[str, tuple]:
        """`generate`: prompts and per-prompt settings in, completions out
        (`LMGenerator.signature`); `generate_chat`: whole conversations
        (`roles`, `contents`) in (`LMGenerator.chat_signature`).

        keras-hub's BPE tokenizer keeps a lookup cache (a `tf.Module`) that
        the model's object graph does not reach; it is attached to the model
        here so that a SavedModel saves the resource its graph reads.
        """
        cache = getattr(model.causal_lm.preprocessor.tokenizer, "cache", None)
        if isinstance(cache, tf.Module):
            model.export_resources = _Resources(cache)
        generator = self.generator(model)
        return {
            "generate": generator.signature(),
            "generate_chat": generator.chat_signature(),
        }

    def tflite_signature(self, model: keras.Model) -> tuple:
        """Refused: there is no TFLite form of generation (ValueError)."""
        raise ValueError(
            "Causal LMs are exported as a keras-hub preset and a SavedModel with "
            "a `generate` signature (tools/export_llm.py): generation loops over "
            "a key/value cache of dynamic size, which TFLite's builtin ops do "
            "not express."
        )

    def serving_examples(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        """(last user message, reference answer) of validation conversations."""
        prompts = self.evaluation_prompts(num_examples)
        users = [contents[-1] for _, contents, _ in prompts]
        references = [reference for _, _, reference in prompts]
        return np.asarray(users, dtype=object), np.asarray(references, dtype=object)

    def parity_measures(
        self, reference: dict, candidate: dict, labels: Any
    ) -> dict[str, float]:
        """Share of prompts whose completion tokens are identical."""
        del labels
        return {"token_agreement": llm_export.compare_tokens(reference, candidate)}

    def parity_reference_measures(
        self, reference: dict, labels: Any
    ) -> dict[str, float]:
        """Exact-match of the reference completions (greedy)."""
        scores = [
            lm_metrics.exact_match(str(c), str(r))
            for c, r in zip(reference["completions"], labels)
        ]
        return {"exact_match": float(np.mean(scores)) if scores else 0.0}

    def parity_tolerance(self, kind: str) -> parity_measures.Bounds:
        """Only `saved_model` applies: identical greedy tokens."""
        if kind != "saved_model":
            raise ValueError(
                f"Causal LMs export a SavedModel only; no parity for {kind!r}."
            )
        return GENERATE_PARITY


class _Resources(tf.Module):
    """Holds TensorFlow resources that a SavedModel must save with the model."""

    def __init__(self, *resources):
        super().__init__()
        self.resources = list(resources)
