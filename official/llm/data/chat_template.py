"""Chat templates: how a conversation becomes one token sequence.

keras-hub presets carry no chat template, so a template here is declarative
data (a Hugging Face Jinja template is turned into it): for each message, `prefix` (with `{role}` replaced by the role's name in
the template), the content, then `suffix`; an assistant turn (and a plain
`text` example) is followed by the tokenizer's end token, so the model learns
to stop. Rendered in TensorFlow (`render_pieces`), each prefix, content and
suffix is tokenized on its own, so every token knows which piece it came
from: the loss mask (assistant content, suffix and end token) is exact, and
a prompt at generation time tokenizes exactly as in training.

Which template a model uses (`task.model.chat_template`):
- `auto`: the preset directory's `chat_template.json` when it has one, else
  its Hugging Face Jinja template (`chat_template.jinja`, or
  `chat_template` in `tokenizer_config.json`), else the template of its
  tokenizer's family (`FAMILY_TEMPLATES`: ChatML for Qwen and SmolLM,
  Llama 3 headers, Gemma turns), else `default`;
- a built-in name from `TEMPLATES`;
- a path to a `chat_template.json` file: `{"prefix": ..., "suffix": ...,
  "roles": {"assistant": "model"}, "stop": ["<end_of_turn>"]}`;
- a path to a Hugging Face Jinja template (a `.jinja` file, or a JSON file
  with `chat_template`): turned into a prefix and a suffix per role and
  checked to render conversations exactly as Jinja does
  (`official.llm.data.jinja_template`; one that cannot be is refused).

The `default` template (for tokenizers without a chat convention, e.g. GPT-2):

    <|system|>\\n{content}\\n<|user|>\\n{content}\\n<|assistant|>\\n{content}<end token>

Example:
```python
from official.llm.data import chat_template

template = chat_template.get_template("default")
text = template.render_text(
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
)
assert text == "<|user|>\\n2+2?\\n<|assistant|>\\n4"
```
"""

from __future__ import annotations

import dataclasses
import json
import os

from official.base.suggest import did_you_mean

# Roles a conversation may use; `text` is a whole pretraining document.
ROLES = ("system", "user", "assistant", "text")
TEMPLATE_FILE = "chat_template.json"


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
    """A declarative chat template.

    Args:
        name: str, for logs and errors.
        prefix: str before each message's content; `{role}` becomes the
            role's name in this template.
        suffix: str after each message's content (before the end token of an
            assistant turn).
        roles: `{role: name}` where the template names a role differently
            (Gemma's assistant is `model`).
        stop: strings that also end generation when they are single tokens of
            the vocabulary (besides the tokenizer's end token).
        assistant_suffix: the assistant's suffix when it differs from
            `suffix`; None: `suffix`.
        prefixes, suffixes: `(role, text)` pairs that replace `prefix` and
            `suffix` for those roles, as written (templates derived from a
            Jinja chat template, `official.llm.data.jinja_template`, have one
            per role).
    """

    name: str
    prefix: str
    suffix: str
    roles: tuple[tuple[str, str], ...] = ()
    stop: tuple[str, ...] = ()
    assistant_suffix: str | None = None
    prefixes: tuple[tuple[str, str], ...] = ()
    suffixes: tuple[tuple[str, str], ...] = ()

    def role_name(self, role: str) -> str:
        return dict(self.roles).get(role, role)

    def prefix_for(self, role: str) -> str:
        if role == "text":
            return ""
        if role in dict(self.prefixes):
            return dict(self.prefixes)[role]
        return self.prefix.replace("{role}", self.role_name(role))

    def suffix_for(self, role: str) -> str:
        if role == "text":
            return ""
        if role in dict(self.suffixes):
            return dict(self.suffixes)[role]
        if role == "assistant" and self.assistant_suffix is not None:
            return self.assistant_suffix
        return self.suffix

    def generation_prefix(self) -> str:
        """What follows a prompt so that the model answers as the assistant."""
        return self.prefix_for("assistant")

    def render_text(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        """The conversation as one string (without start and end tokens)."""
        text = "".join(
            self.prefix_for(m["role"]) + m["content"] + self.suffix_for(m["role"])
            for m in messages
        )
        return text + (self.generation_prefix() if add_generation_prompt else "")

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "roles": dict(self.roles),
            "stop": list(self.stop),
            "assistant_suffix": self.assistant_suffix,
            "prefixes": dict(self.prefixes),
            "suffixes": dict(self.suffixes),
        }


TEMPLATES = {
    # The assistant's content is followed directly by the end token, so an
    # answer is exactly the content.
    "default": ChatTemplate("default", "<|{role}|>\n", "\n", assistant_suffix=""),
    "chatml": ChatTemplate(
        "chatml", "<|im_start|>{role}\n", "<|im_end|>\n", stop=("<|im_end|>",)
    ),
    "llama3": ChatTemplate(
        "llama3",
        "<|start_header_id|>{role}<|end_header_id|>\n\n",
        "<|eot_id|>",
        stop=("<|eot_id|>",),
    ),
    "gemma": ChatTemplate(
        "gemma",
        "<start_of_turn>{role}\n",
        "<end_of_turn>\n",
        roles=(("assistant", "model"),),
        stop=("<end_of_turn>",),
    ),
}

# Tokenizer class name prefixes -> the template their models were tuned with.
FAMILY_TEMPLATES = (
    ("SmolLM", "chatml"),
    ("Qwen", "chatml"),
    ("Llama3", "llama3"),
    ("Gemma", "gemma"),
)


def from_json(data: dict, where: str) -> ChatTemplate:
    """A template from the JSON form (`ChatTemplate.to_json`)."""
    known = {
        "name",
        "prefix",
        "suffix",
        "roles",
        "stop",
        "assistant_suffix",
        "prefixes",
        "suffixes",
    }
    unknown = sorted(set(data) - known)
    if unknown or "prefix" not in data or "suffix" not in data:
        raise ValueError(
            f"{where}: a chat template has `prefix` and `suffix` (strings) and "
            f"optionally `name`, `roles`, `stop`, `assistant_suffix`, `prefixes` "
            f"and `suffixes` (or it is a Hugging Face file with a Jinja "
            f"`chat_template`). Received keys: {sorted(data)}."
        )
    for key in ("roles", "prefixes", "suffixes"):
        value = data.get(key) or {}
        if not isinstance(value, dict) or not all(r in ROLES for r in value):
            raise ValueError(
                f"{where}: `{key}` maps roles among {', '.join(ROLES)} to "
                f"strings. Received: {value!r}."
            )
    roles = data.get("roles") or {}
    return ChatTemplate(
        name=str(data.get("name", os.path.basename(where))),
        prefix=str(data["prefix"]),
        suffix=str(data["suffix"]),
        roles=tuple(sorted(roles.items())),
        stop=tuple(data.get("stop", ())),
        assistant_suffix=data.get("assistant_suffix"),
        prefixes=tuple(sorted((data.get("prefixes") or {}).items())),
        suffixes=tuple(sorted((data.get("suffixes") or {}).items())),
    )


def read_template_file(path: str) -> ChatTemplate:
    """A template file: Garden's JSON form, or a Hugging Face Jinja template
    (a `.jinja` file, or JSON with `chat_template`: `tokenizer_config.json`,
    Hugging Face's `chat_template.json`)."""
    from official.llm.data import jinja_template

    if not path.endswith(".json"):
        return jinja_template.read_jinja_file(path)
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}).") from None
    if isinstance(data, dict) and "chat_template" in data:
        return jinja_template.read_jinja_file(path)
    return from_json(data, path)


def get_template(spec: str, preset: str = "", tokenizer_class: str = "") -> ChatTemplate:
    """The template `spec` names (`auto`, a built-in name or a file path).

    Args:
        spec: `task.model.chat_template`.
        preset: the preset (or tokenizer preset) directory, read by `auto`.
        tokenizer_class: the tokenizer's class name, for `auto`'s family
            templates.
    """
    if spec == "auto":
        from official.llm.data import jinja_template

        path = os.path.join(preset, TEMPLATE_FILE) if preset else ""
        if path and os.path.exists(path):
            return read_template_file(path)
        path = jinja_template.preset_jinja_file(preset) if preset else None
        if path:
            return read_template_file(path)
        for family, name in FAMILY_TEMPLATES:
            if tokenizer_class.startswith(family):
                return TEMPLATES[name]
        return TEMPLATES["default"]
    if spec in TEMPLATES:
        return TEMPLATES[spec]
    if spec.endswith((".json", ".jinja")) or os.path.sep in spec:
        if not os.path.exists(spec):
            raise FileNotFoundError(f"task.model.chat_template: no file {spec!r}.")
        return read_template_file(spec)
    raise KeyError(
        f"task.model.chat_template: unknown {spec!r}.{did_you_mean(spec, TEMPLATES)} "
        f"Valid: auto, {', '.join(TEMPLATES)}, or a path to a {TEMPLATE_FILE}, "
        f"a .jinja file or a tokenizer_config.json with a Jinja chat_template."
    )


def write_template(template: ChatTemplate, directory: str) -> str:
    """Writes `chat_template.json` into a preset directory; returns its path."""
    path = os.path.join(directory, TEMPLATE_FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(template.to_json(), f, indent=2)
        f.write("\n")
    return path
