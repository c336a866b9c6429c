"""Hugging Face Jinja chat templates, as a prefix and a suffix per role.

Models downloaded from the Hugging Face Hub carry their chat template as
Jinja source: `chat_template` in `tokenizer_config.json` (or in
`chat_template.json`), or a `chat_template.jinja` file. Garden's pipeline
renders a conversation as `prefix(role) + content + suffix(role)` per
message, each piece tokenized on its own (exact loss masks, and the same
tokens in training and generation). `from_jinja` derives those pieces from
the Jinja source with jinja2 (sandboxed, `trim_blocks` and `lstrip_blocks`
as Hugging Face renders):

1. one conversation (system, user, assistant, user, assistant) with a
   sentinel as each content is rendered and cut at the sentinels; with the
   generation prompt (what `add_generation_prompt` appends) as the
   assistant's prefix, the pieces between contents give each role's prefix
   and suffix;
2. `bos_token` is rendered as a sentinel too: at the very start it is the
   model's start token (which the preprocessor adds), and `eos_token` at
   the end of the assistant's suffix is the end token Garden adds after
   every assistant turn; anywhere else they are refused;
3. the pieces are checked: for several conversations (one to five
   messages, with and without a system message, with and without the
   generation prompt, contents with spaces, newlines, braces and non-ASCII
   text) the Jinja rendering must equal the per-role rendering exactly.

A template whose output depends on more than the role (a default system
prompt added when there is none, a system message folded into the first
user turn, content-dependent logic, the date) fails step 3, or step 1 when
it raises, and is refused with an error naming the file: write a
`chat_template.json` with `prefix`/`suffix` or use a built-in template.

Example:
```python
from official.llm.data import jinja_template

source = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\\n{{ m['content'] }}"
    "<|im_end|>\\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\\n{% endif %}"
)
template = jinja_template.from_jinja(source, "chatml.jinja")
template.prefix_for("user"), template.suffix_for("user")
# -> ('<|im_start|>user\\n', '<|im_end|>\\n')
```
"""

from __future__ import annotations

import json
import os

from official.llm.data.chat_template import ChatTemplate

JINJA_FILE = "chat_template.jinja"
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
# Private-use characters: no template or test content contains them.
BOS = "\ue000bos\ue000"
EOS = "\ue000eos\ue000"
CHAT_ROLES = ("system", "user", "assistant")
# The conversation the pieces are cut from: (role, sentinel index).
_PROBE = ("system", "user", "assistant", "user", "assistant")
_CONTENTS = (
    "What is 2+3?",
    "5",
    "Be brief.",
    "Line one\nline two",
    "A {{ brace }} and {% percent %}",
    "naïve café, 3 × 4 = 12 ✓",
    "Thanks!",
)
_CHECKED = (
    ("user",),
    ("user", "assistant"),
    ("system", "user"),
    ("system", "user", "assistant"),
    ("user", "assistant", "user"),
    ("user", "assistant", "user", "assistant"),
    ("system", "user", "assistant", "user", "assistant"),
)


def _sentinel(i: int) -> str:
    return f"\ue001{i}\ue001"


def _compile(source: str, where: str):
    try:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise ImportError(
            f"{where}: a Jinja chat template needs jinja2 (pip install jinja2, "
            f"part of the `llm` extra)."
        ) from None

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateError as e:
        raise ValueError(f"{where}: not a valid Jinja template ({e}).") from None


def _render(template, messages, add_generation_prompt: bool, where: str) -> str:
    import jinja2

    try:
        return template.render(
            messages=[dict(m) for m in messages],
            add_generation_prompt=add_generation_prompt,
            bos_token=BOS,
            eos_token=EOS,
        )
    except (jinja2.exceptions.TemplateError, TypeError, KeyError, IndexError) as e:
        roles = [m["role"] for m in messages]
        raise ValueError(
            f"{where}: the Jinja chat template fails on a conversation with roles "
            f"{roles} ({type(e).__name__}: {e}); Garden needs a template that "
            f"renders system, user and assistant turns as a prefix and a suffix "
            f"per role. Write a chat_template.json with `prefix` and `suffix` or "
            f"use a built-in template."
        ) from None


def _cut(text: str, count: int, where: str) -> list[str]:
    """The text between sentinels 0..count-1 (count + 1 pieces)."""
    pieces, rest = [], text
    for i in range(count):
        before, found, rest = rest.partition(_sentinel(i))
        if not found or _sentinel(i) in rest:
            raise ValueError(
                f"{where}: the Jinja chat template does not render each message's "
                f"content exactly once, as is (message {i}); it cannot be "
                f"written as a prefix and a suffix per role."
            )
        pieces.append(before)
    return pieces + [rest]


def _without(text: str, part: str, at_end: bool) -> str | None:
    if at_end:
        return text[: len(text) - len(part)] if text.endswith(part) else None
    return text[len(part) :] if text.startswith(part) else None


def _pieces(template, where: str) -> dict:
    messages = [{"role": r, "content": _sentinel(i)} for i, r in enumerate(_PROBE)]
    text = _render(template, messages, False, where)
    prompt = messages[:4]
    plain = _render(template, prompt, False, where)
    generation = _without(_render(template, prompt, True, where), plain, at_end=False)
    unexpressible = ValueError(
        f"{where}: the Jinja chat template cannot be written as a prefix and a "
        f"suffix per role: the pieces between the messages differ for the same "
        f"roles (rendered: {_readable(text)!r}). Write a chat_template.json "
        f"with `prefix` and `suffix` or use a built-in template."
    )
    if generation is None:
        raise unexpressible
    p0, p1, p2, p3, p4, p5 = _cut(text, len(_PROBE), where)
    header = p0.startswith(BOS)
    assistant_suffix = p5
    user_suffix = _without(p2, generation, at_end=True)
    user_prefix = _without(p3, assistant_suffix, at_end=False)
    if user_suffix is None or user_prefix is None or p4 != p2:
        raise unexpressible
    system_suffix = _without(p1, user_prefix, at_end=True)
    if system_suffix is None:
        raise unexpressible
    eos_after_assistant = assistant_suffix.endswith(EOS)
    if eos_after_assistant:
        assistant_suffix = assistant_suffix[: -len(EOS)]
    pieces = {
        "header": header,
        "eos_after_assistant": eos_after_assistant,
        "prefixes": {
            "system": p0[len(BOS) :] if header else p0,
            "user": user_prefix,
            "assistant": generation,
        },
        "suffixes": {
            "system": system_suffix,
            "user": user_suffix,
            "assistant": assistant_suffix,
        },
    }
    for kind in ("prefixes", "suffixes"):
        for role, value in pieces[kind].items():
            if BOS in value or EOS in value:
                raise ValueError(
                    f"{where}: the Jinja chat template puts bos_token or eos_token "
                    f"inside the {role} {kind[:-2]} ({_readable(value)!r}); only a "
                    f"bos_token first and an eos_token ending the assistant's turn "
                    f"are the model's start and end tokens."
                )
    return pieces


def _readable(text: str) -> str:
    text = text.replace(BOS, "<bos_token>").replace(EOS, "<eos_token>")
    for i in range(len(_PROBE)):
        text = text.replace(_sentinel(i), f"<content {i}>")
    return text


def _by_pieces(pieces: dict, messages, add_generation_prompt: bool) -> str:
    text = BOS if pieces["header"] else ""
    for m in messages:
        role = m["role"]
        text += pieces["prefixes"][role] + m["content"] + pieces["suffixes"][role]
        if role == "assistant" and pieces["eos_after_assistant"]:
            text += EOS
    if add_generation_prompt:
        text += pieces["prefixes"]["assistant"]
    return text


def _check(template, pieces: dict, where: str) -> None:
    for n, roles in enumerate(_CHECKED):
        messages = [
            {"role": role, "content": _CONTENTS[(n + i) % len(_CONTENTS)]}
            for i, role in enumerate(roles)
        ]
        for generation in (False, True):
            want = _render(template, messages, generation, where)
            got = _by_pieces(pieces, messages, generation)
            if want != got:
                raise ValueError(
                    f"{where}: the Jinja chat template cannot be written as a "
                    f"prefix and a suffix per role: for roles {list(roles)} "
                    f"(add_generation_prompt={generation}) Jinja renders "
                    f"{_readable(want)!r}, the per-role pieces give "
                    f"{_readable(got)!r}. Write a chat_template.json with "
                    f"`prefix` and `suffix` or use a built-in template."
                )


def from_jinja(source: str, where: str) -> ChatTemplate:
    """A `ChatTemplate` equal to Jinja chat template `source` (see the module
    docstring); `where` (the file) names it in errors."""
    template = _compile(source, where)
    pieces = _pieces(template, where)
    _check(template, pieces, where)
    end_of_turn = pieces["suffixes"]["assistant"].strip()
    return ChatTemplate(
        name=os.path.basename(where),
        prefix=pieces["prefixes"]["user"],
        suffix=pieces["suffixes"]["user"],
        stop=(end_of_turn,) if end_of_turn else (),
        prefixes=tuple(sorted(pieces["prefixes"].items())),
        suffixes=tuple(sorted(pieces["suffixes"].items())),
    )


def jinja_source(data, where: str) -> str:
    """The Jinja source of a `chat_template` value (a string, or Hugging
    Face's list of named templates, of which `default` is used)."""
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        named = {t.get("name"): t.get("template") for t in data if isinstance(t, dict)}
        if isinstance(named.get("default"), str):
            return named["default"]
    raise ValueError(
        f"{where}: `chat_template` must be Jinja source or a list of "
        f"{{name, template}} with a `default`. Received: {str(data)[:200]!r}."
    )


def read_jinja_file(path: str) -> ChatTemplate:
    """A template from a `.jinja` file, or a JSON file with `chat_template`
    (`tokenizer_config.json`, Hugging Face's `chat_template.json`)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not path.endswith(".json"):
        return from_jinja(text, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from None
    if not isinstance(data, dict) or "chat_template" not in data:
        raise ValueError(f"{path}: has no `chat_template` (Jinja source).")
    return from_jinja(jinja_source(data["chat_template"], path), path)


def preset_jinja_file(directory: str) -> str | None:
    """The file of a preset directory that holds a Jinja chat template:
    `chat_template.jinja`, else `tokenizer_config.json` with a
    `chat_template`; None when there is neither."""
    path = os.path.join(directory, JINJA_FILE)
    if os.path.exists(path):
        return path
    path = os.path.join(directory, HF_TOKENIZER_CONFIG)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            try:
                if "chat_template" in json.load(f):
                    return path
            except (json.JSONDecodeError, TypeError):
                return None
    return None
