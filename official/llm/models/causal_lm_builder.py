"""Builds keras-hub causal LMs and their tokenizers from `CausalLMModelConfig`.

A preset directory gives the whole model (`keras_hub.models.CausalLM.
from_preset`, weights included) and its tokenizer; an architecture name gives
a new model of the sizes in `backbone_params`, with the vocabulary of the
tokenizer in `tokenizer_preset`. Nothing is downloaded: a preset must be a
local directory.

Example:
```python
import tempfile
from official.llm.configs.causal_lm import CausalLMModelConfig
from official.llm.data import byte_tokenizer
from official.llm.models import causal_lm_builder

tokenizer_dir = byte_tokenizer.write_byte_tokenizer(tempfile.mkdtemp())
config = CausalLMModelConfig(
    architecture="GPT2Backbone",
    backbone_params=dict(num_layers=1, num_heads=2, hidden_dim=8,
                         intermediate_dim=16, max_sequence_length=32),
    tokenizer_preset=tokenizer_dir)
lm = causal_lm_builder.build_causal_lm(config)
lm.backbone.vocabulary_size  # -> 257
```
"""

from __future__ import annotations

import json
import os
import re
import warnings

from official.llm.configs.causal_lm import ARCHITECTURES, CausalLMModelConfig
from official.llm.data import chat_template

TOKENIZER_FILE = "tokenizer.json"


def _check_preset_dir(path: str, where: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{where}: {path!r} is not a directory. Give a keras-hub preset "
            f"directory on disk (written by `save_to_preset`); nothing is "
            f"downloaded."
        )


def read_tokenizer_dir(directory: str, where: str = "task.model.tokenizer_preset"):
    """A tokenizer from a directory holding `tokenizer.json` and its assets
    (what a keras-hub tokenizer's `save_to_preset` writes; a whole preset
    directory has them too)."""
    import keras

    _check_preset_dir(directory, where)
    path = os.path.join(directory, TOKENIZER_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{where}: {directory!r} has no {TOKENIZER_FILE} (write one with a "
            f"keras-hub tokenizer's save_to_preset)."
        )
    with open(path, encoding="utf-8") as f:
        tokenizer = keras.saving.deserialize_keras_object(json.load(f))
    tokenizer.load_preset_assets(directory)
    return tokenizer


def load_tokenizer(config: CausalLMModelConfig):
    """The keras-hub tokenizer of the model `config` describes."""
    if config.preset:
        return read_tokenizer_dir(config.preset, "task.model.preset")
    return read_tokenizer_dir(config.tokenizer_preset)


def load_preprocessor(config: CausalLMModelConfig):
    """The keras-hub `CausalLMPreprocessor` (tokenizer and start/end tokens)."""
    import keras_hub

    if config.preset:
        _check_preset_dir(config.preset, "task.model.preset")
        return keras_hub.models.CausalLMPreprocessor.from_preset(config.preset)
    lm_cls = getattr(keras_hub.models, ARCHITECTURES[config.architecture][1])
    return lm_cls.preprocessor_cls(tokenizer=load_tokenizer(config))


def load_template(config: CausalLMModelConfig, tokenizer) -> chat_template.ChatTemplate:
    """The chat template `config.chat_template` names (see chat_template.py)."""
    return chat_template.get_template(
        config.chat_template,
        preset=config.preset or config.tokenizer_preset,
        tokenizer_class=type(tokenizer).__name__,
    )


def build_causal_lm(config: CausalLMModelConfig):
    """A keras-hub `CausalLM` with its preprocessor, built and ready to call."""
    import keras_hub

    if config.preset:
        _check_preset_dir(config.preset, "task.model.preset")
        lm = keras_hub.models.CausalLM.from_preset(config.preset)
    else:
        backbone_name, lm_name = ARCHITECTURES[config.architecture]
        preprocessor = load_preprocessor(config)
        # A fixed name: variable paths (LoRA patterns, adapter files) go
        # through it, and Keras would number a second model "..._1".
        params = {"name": backbone_layer_name(backbone_name), **config.backbone_params}
        backbone = getattr(keras_hub.models, backbone_name)(
            vocabulary_size=preprocessor.tokenizer.vocabulary_size(), **params
        )
        lm_cls = getattr(keras_hub.models, lm_name)
        lm = lm_cls(backbone=backbone, preprocessor=preprocessor)
    if config.quantize:
        with warnings.catch_warnings():
            # Keras warns once per layer type it does not quantize (norms,
            # dropout, position embeddings): expected, and only here.
            warnings.filterwarnings(
                "ignore", message=r".*does not have a `quantize` method"
            )
            lm.backbone.quantize(config.quantize)  # not the preprocessor
    return lm


def backbone_layer_name(class_name: str) -> str:
    """A backbone class's layer name in snake case (`GPT2Backbone` ->
    `gpt2_backbone`, keras-hub's default, which its presets record)."""
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", class_name).lower()


def special_token_ids(preprocessor) -> dict[str, int | None]:
    """`start` (None when the preprocessor adds none), `end` and `pad` ids."""
    tokenizer = preprocessor.tokenizer
    add_start = getattr(preprocessor, "add_start_token", False)
    start = getattr(tokenizer, "start_token_id", None) if add_start else None
    end = tokenizer.end_token_id
    pad = getattr(tokenizer, "pad_token_id", None)
    return {"start": start, "end": end, "pad": end if pad is None else pad}
