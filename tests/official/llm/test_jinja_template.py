"""Hugging Face Jinja chat templates as a prefix and suffix per role."""

from __future__ import annotations

import json

import pytest

from official.llm.data import chat_template, jinja_template

jinja2 = pytest.importorskip("jinja2")

CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Meta's Llama 3 Instruct template (bos_token first, contents trimmed).
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
# Different pieces per role, eos_token closing the assistant's turn.
INST = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<<SYS>>' + message['content'] + '<</SYS>>\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST] ' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)
# A default system prompt when the conversation has none: not per-role.
DEFAULT_SYSTEM = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}" + CHATML
)
# The system message folded into the first user turn (Llama 2 style).
FOLDED_SYSTEM = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + (system + ' ' if loop.first and system else '') + "
    "message['content'] + ' [/INST]' }}{% else %}{{ message['content'] }}{% endif %}"
    "{% endfor %}"
)

CONVERSATION = [
    {"role": "system", "content": "Answer with a number."},
    {"role": "user", "content": "What is 2+3?"},
    {"role": "assistant", "content": "5"},
    {"role": "user", "content": "And 4 × 4?"},
]


def _jinja(source, messages, add_generation_prompt=True, bos="", eos=""):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(source).render(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos,
        eos_token=eos,
    )


def test_chatml_jinja_gives_the_builtin_chatml_pieces():
    template = jinja_template.from_jinja(CHATML, "chatml.jinja")
    builtin = chat_template.TEMPLATES["chatml"]
    for role in ("system", "user", "assistant"):
        assert template.prefix_for(role) == builtin.prefix_for(role)
        assert template.suffix_for(role) == builtin.suffix_for(role)
    assert template.stop == ("<|im_end|>",)
    assert template.render_text(CONVERSATION, add_generation_prompt=True) == _jinja(
        CHATML, CONVERSATION
    )


def test_llama3_jinja_drops_the_bos_token_the_preprocessor_adds():
    template = jinja_template.from_jinja(LLAMA3, "llama3.jinja")
    builtin = chat_template.TEMPLATES["llama3"]
    for role in ("system", "user", "assistant"):
        assert template.prefix_for(role) == builtin.prefix_for(role)
        assert template.suffix_for(role) == builtin.suffix_for(role)
    assert template.generation_prefix() == (
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    rendered = _jinja(LLAMA3, CONVERSATION, bos="<|begin_of_text|>")
    assert (
        "<|begin_of_text|>"
        + template.render_text(CONVERSATION, add_generation_prompt=True)
        == rendered
    )


def test_per_role_pieces_and_eos_after_the_assistant():
    template = jinja_template.from_jinja(INST, "inst.jinja")
    assert template.prefix_for("user") == "[INST] "
    assert template.suffix_for("user") == " [/INST] "
    assert template.prefix_for("assistant") == ""  # no generation prompt
    assert template.prefix_for("system") == "<<SYS>>"
    assert template.suffix_for("system") == "<</SYS>>\n"
    # The eos_token is the end token Garden adds after every assistant turn.
    assert template.suffix_for("assistant") == ""
    messages = CONVERSATION[:3]
    text = template.render_text(messages)
    assert text + "</s>" == _jinja(INST, messages, False, eos="</s>")


@pytest.mark.parametrize(
    "source, message",
    [
        (DEFAULT_SYSTEM, r"for roles \['user'\]"),
        (FOLDED_SYSTEM, "cannot be written as a prefix and a suffix per role"),
        ("{{ messages[0]['content'] | upper }}", "render each message's content"),
        ("{% for m in messages %}{{ raise_exception('no') }}{% endfor %}", "fails on"),
        ("{% for m in messages %}", "not a valid Jinja template"),
    ],
)
def test_templates_that_are_not_per_role_are_refused_naming_the_file(
    tmp_path, source, message
):
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"chat_template": source, "eos_token": "</s>"}))
    with pytest.raises(ValueError, match=message) as error:
        chat_template.get_template(str(path))
    assert str(path) in str(error.value)


def test_auto_reads_the_jinja_template_of_a_preset_directory(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": [{"name": "default", "template": CHATML}]})
    )
    template = chat_template.get_template("auto", preset=str(tmp_path))
    assert template.prefix_for("user") == "<|im_start|>user\n"
    (tmp_path / "chat_template.jinja").write_text(LLAMA3)
    template = chat_template.get_template("auto", preset=str(tmp_path))
    assert template.suffix_for("user") == "<|eot_id|>"
    # Garden's own chat_template.json (what an export writes) comes first, and
    # the per-role pieces survive the JSON round trip.
    chat_template.write_template(
        jinja_template.from_jinja(INST, "inst.jinja"), str(tmp_path)
    )
    again = chat_template.get_template("auto", preset=str(tmp_path))
    assert again == jinja_template.from_jinja(INST, "inst.jinja")
    assert chat_template.get_template(str(tmp_path / "chat_template.jinja")) == (
        jinja_template.from_jinja(LLAMA3, str(tmp_path / "chat_template.jinja"))
    )


def test_the_encoder_tokenizes_a_jinja_template_as_jinja_renders_it(tmp_path):
    import numpy as np
    import tensorflow as tf

    from official.llm.data.sft_tokenize import ConversationEncoder
    from official.llm.models.causal_lm_builder import read_tokenizer_dir
    from tests.official.llm import llm_testing

    tokenizer = read_tokenizer_dir(llm_testing.tokenizer_dir(tmp_path))
    encoder = ConversationEncoder(
        tokenizer,
        jinja_template.from_jinja(LLAMA3, "llama3.jinja"),
        start_id=0,
        end_id=0,
    )
    messages = CONVERSATION[:3]
    ids, _ = encoder.encode(
        tf.constant([m["role"] for m in messages]),
        tf.constant([m["content"] for m in messages]),
    )
    text = tokenizer.detokenize(tf.constant(np.asarray(ids)))
    end = "<|endoftext|>"
    # Jinja's rendering, with the model's start token for bos_token and its
    # end token after the assistant's turn.
    assert text == _jinja(LLAMA3, messages, False, bos=end) + end
