"""Every config field exists because some code reads it.

Walks the config tree of every registered experiment and looks for an
attribute read of each field (`.name`) in the code under official/ and
serving/, outside the config classes that declare the fields.
"""

import dataclasses
import pathlib
import re

from official.core import exp_factory
from official.base.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _config_classes(config, seen):
    if type(config) in seen:
        return
    seen.add(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, Config):
            _config_classes(value, seen)


def _code_without_config_declarations() -> str:
    texts = []
    for folder in ("official", "serving"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            # Field declarations (`name: type = ...`) do not count as reads.
            texts.append(re.sub(r"^\s+\w+: .*$", "", text, flags=re.M))
    return "\n".join(texts)


def test_every_config_field_is_read_somewhere():
    classes = set()
    for name, _ in exp_factory.describe_experiments():
        _config_classes(exp_factory.get_exp_config(name), classes)
    code = _code_without_config_declarations()
    unread = []
    for cls in sorted(classes, key=lambda c: c.__name__):
        for field in dataclasses.fields(cls):
            if not re.search(rf"\.{field.name}\b", code):
                unread.append(f"{cls.__name__}.{field.name}")
    assert not unread, f"Config fields no code reads: {unread}"
