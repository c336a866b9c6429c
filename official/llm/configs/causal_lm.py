"""Configs of the causal-LM task: model, SFT data, generation report.

No TensorFlow, Keras or keras-hub at import (the experiments that build these
configs are listed in `official/registry_configs.py`); `validate()` imports
keras-hub only to check backbone parameters against a constructor.
"""

from __future__ import annotations

import dataclasses

from official.base.config import Config
from official.base.params_check import check_params
from official.base.suggest import did_you_mean
from official.core.experiment_config import DataConfig, TaskConfig

# `task.model.architecture` -> (keras-hub backbone class, causal LM class).
ARCHITECTURES = {
    "GPT2Backbone": ("GPT2Backbone", "GPT2CausalLM"),
    "LlamaBackbone": ("LlamaBackbone", "LlamaCausalLM"),
    "Llama3Backbone": ("Llama3Backbone", "Llama3CausalLM"),
    "MistralBackbone": ("MistralBackbone", "MistralCausalLM"),
    "QwenBackbone": ("QwenBackbone", "QwenCausalLM"),
    "Qwen3Backbone": ("Qwen3Backbone", "Qwen3CausalLM"),
    "SmolLM3Backbone": ("SmolLM3Backbone", "SmolLM3CausalLM"),
}
# Ways a split's files are read.
SFT_INPUT_FORMATS = ("jsonl", "tfrecord")
# Quantizations of the base weights before fine-tuning.
QUANTIZATIONS = ("", "int8")


@dataclasses.dataclass
class CausalLMModelConfig(Config):
    """Which keras-hub causal LM to build, and its tokenizer and chat template.

    Set exactly one of:
    - `preset`: a keras-hub preset directory on disk (`config.json`,
      `model.weights.h5`, `tokenizer.json`, ...): backbone, weights and
      tokenizer all come from it;
    - `architecture` (a key of `ARCHITECTURES`, e.g. `GPT2Backbone`) with
      `backbone_params` (its constructor arguments, checked against its
      signature; `vocabulary_size` always comes from the tokenizer)
      and `tokenizer_preset` (a directory written by a keras-hub tokenizer's
      `save_to_preset`): a new, randomly initialized model.

    `chat_template`: `auto` (the preset's `chat_template.json`, else its
    Hugging Face Jinja template, else the template of its tokenizer's
    family, else `default`), a built-in name
    (`official.llm.data.chat_template.TEMPLATES`) or a path to a
    `chat_template.json` file or a Jinja template (`.jinja`, or a
    `tokenizer_config.json` with `chat_template`). `quantize`: `int8` quantizes the base's
    Dense/EinsumDense kernels (Keras' `model.quantize("int8")`) before
    `trainer.finetune.lora` adds float adapters.
    """

    preset: str = ""
    architecture: str = ""
    backbone_params: dict = dataclasses.field(default_factory=dict)
    tokenizer_preset: str = ""
    chat_template: str = "auto"
    quantize: str = ""

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if bool(self.preset) == bool(self.architecture):
            raise ValueError(
                f"{where}: set exactly one of `preset` (a keras-hub preset "
                f"directory) and `architecture` (one of {', '.join(ARCHITECTURES)}). "
                f"Received: preset={self.preset!r}, architecture={self.architecture!r}."
            )
        if self.quantize not in QUANTIZATIONS:
            raise ValueError(
                f"{where}.quantize must be '' (none) or 'int8'. Received: "
                f"{self.quantize!r}."
            )
        if self.preset:
            if self.backbone_params or self.tokenizer_preset:
                raise ValueError(
                    f"{where}: `preset` brings its own backbone and tokenizer; "
                    f"clear backbone_params and tokenizer_preset. Received: "
                    f"backbone_params={self.backbone_params}, "
                    f"tokenizer_preset={self.tokenizer_preset!r}."
                )
            return
        if self.architecture not in ARCHITECTURES:
            raise KeyError(
                f"{where}.architecture: unknown {self.architecture!r}."
                f"{did_you_mean(self.architecture, ARCHITECTURES)} Valid: "
                f"{', '.join(ARCHITECTURES)}."
            )
        if not self.tokenizer_preset:
            raise ValueError(
                f"{where}.tokenizer_preset must name a keras-hub tokenizer "
                f"directory when the model is built from `architecture` "
                f"({self.architecture})."
            )
        import keras_hub

        backbone_cls = getattr(keras_hub.models, ARCHITECTURES[self.architecture][0])
        check_params(
            backbone_cls,
            self.backbone_params,
            f"{where}.backbone_params",
            reserved=("vocabulary_size",),
        )


@dataclasses.dataclass
class SFTFieldsConfig(Config):
    """The names of an SFT example's fields (JSON keys or TFDS features).

    An example holds `messages` (a list of `{role: ..., content: ...}`;
    roles system, user, assistant), else `prompt` and `completion` (a user
    turn and the assistant's answer), else `text` (a whole document, every
    token trains). Rename them to read data that calls them otherwise, e.g.
    `prompt: question`, `completion: answer`.
    """

    messages: str = "messages"
    role: str = "role"
    content: str = "content"
    prompt: str = "prompt"
    completion: str = "completion"
    text: str = "text"

    def validate(self, where: str = "") -> None:
        super().validate(where)
        for name, value in dataclasses.asdict(self).items():
            if not value:
                raise ValueError(f"{where}.{name} must name a field; it is empty.")


@dataclasses.dataclass
class SFTDataConfig(DataConfig):
    """One split of supervised fine-tuning (or plain text) examples.

    Files: `input_path`, comma-separated glob patterns of JSON Lines files
    (`input_format=jsonl`) or TFRecord files of tf.Examples
    (`input_format=tfrecord`, written by
    `official.llm.data.sft_records.write_sft_tfrecords`). Or TFDS:
    `tfds_name` with `tfds_split` and `tfds_data_dir`, a dataset prepared on
    disk (never downloaded) whose features are a `messages` sequence of
    `{role, content}` text features, or `prompt` and `completion` text, or
    `text`. A JSON line holds
    one of `{"messages": [{"role": ..., "content": ...}, ...]}`,
    `{"prompt": ..., "completion": ...}` or `{"text": ...}`; `fields`
    renames these keys (JSON Lines and TFDS). The chat
    template is applied in the pipeline; with `loss_on=assistant` only the
    assistant turns (and their end token) carry loss, with `all` every token.
    `{"text": ...}` examples always train on every token (pretraining).

    `sequence_length`: tokens per row (inputs; targets are shifted by one).
    An example longer than `sequence_length + 1` tokens is cut at the end.
    `packing`: several examples per row, each attending only to itself
    (segment ids); otherwise one example per row, padded.
    """

    input_format: str = "jsonl"
    sequence_length: int = 512
    packing: bool = True
    loss_on: str = "assistant"
    fields: SFTFieldsConfig = dataclasses.field(default_factory=SFTFieldsConfig)

    def _validate_reader_options(self, where: str) -> None:
        if self.input_format not in SFT_INPUT_FORMATS:
            raise ValueError(
                f"{where}.input_format must be one of {', '.join(SFT_INPUT_FORMATS)}. "
                f"Received: {self.input_format!r}."
            )
        unsupported = {
            "input_weights": (self.input_weights, []),
            "tf_data_service_address": (self.tf_data_service_address, ""),
            "ignore_errors": (self.ignore_errors, False),
        }
        for name, (value, default) in unsupported.items():
            if value != default:
                raise ValueError(
                    f"{where}.{name} is not supported for SFT data; leave it at "
                    f"{default!r}. Received: {value!r}."
                )
        if self.sequence_length < 2:
            raise ValueError(
                f"{where}.sequence_length must be >= 2. Received: "
                f"{self.sequence_length}."
            )
        if self.loss_on not in ("assistant", "all"):
            raise ValueError(
                f"{where}.loss_on must be 'assistant' or 'all'. Received: "
                f"{self.loss_on!r}."
            )


@dataclasses.dataclass
class GenerationEvalConfig(Config):
    """The generation report of every evaluation.

    The first `num_prompts` validation examples become prompts (the
    conversation up to its last assistant turn, or the `prompt`); their
    completions are logged and written to `eval_results.json`, with
    exact-match and token-F1 against the reference (the last assistant turn,
    or the `completion`). `temperature` 0 decodes greedily; `top_k` 0 samples
    from the whole vocabulary. 0 prompts turns the report off.
    """

    num_prompts: int = 8
    max_new_tokens: int = 32
    temperature: float = 0.0
    top_k: int = 0
    seed: int = 0

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.num_prompts < 0 or self.max_new_tokens < 1:
            raise ValueError(
                f"{where}: num_prompts must be >= 0 and max_new_tokens >= 1. "
                f"Received: num_prompts={self.num_prompts}, "
                f"max_new_tokens={self.max_new_tokens}."
            )
        if self.temperature < 0 or self.top_k < 0:
            raise ValueError(
                f"{where}: temperature and top_k must be >= 0. Received: "
                f"temperature={self.temperature}, top_k={self.top_k}."
            )


@dataclasses.dataclass
class CausalLMTaskConfig(TaskConfig):
    """Supervised fine-tuning (or pretraining) of a keras-hub causal LM."""

    model: CausalLMModelConfig = dataclasses.field(default_factory=CausalLMModelConfig)
    train_data: SFTDataConfig = dataclasses.field(default_factory=SFTDataConfig)
    validation_data: SFTDataConfig = dataclasses.field(
        default_factory=lambda: SFTDataConfig(
            is_training=False, drop_remainder=False, packing=False
        )
    )
    generation: GenerationEvalConfig = dataclasses.field(
        default_factory=GenerationEvalConfig
    )
