"""Typed, strict configuration on dataclasses.

A config is a `@dataclasses.dataclass` that subclasses `Config`. Nested
configs use `default_factory`. Values are set in three layers, in order:
the experiment factory's defaults, YAML files (`override`), then dotted keys
(`override_dotted`, values parsed with `yaml.safe_load`). Every value is
type-checked when it is set; unknown keys are errors that name the closest
valid key. Cross-field checks live in `validate()`, called once after all
overrides.

Example:
```python
import dataclasses
import re
from official.base.config import Config

@dataclasses.dataclass
class Inner(Config):
    rate: float = 0.1

@dataclasses.dataclass
class Outer(Config):
    steps: int = 10
    inner: Inner = dataclasses.field(default_factory=Inner)

cfg = Outer()
cfg.override_dotted({"inner.rate": "0.5", "steps": "20"})
assert cfg.inner.rate == 0.5 and cfg.steps == 20
```
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from typing import Any, Union

import yaml

from official.base.suggest import did_you_mean


class ConfigError(ValueError):
    """A config that cannot run as given; the message names the key to set."""


# Characters of a received value quoted in an error message.
MAX_QUOTED = 200


def shorten(text: str, limit: int = MAX_QUOTED) -> str:
    """`text` cut after `limit` characters, saying how long it was.

    Example:
    ```python
    from official.base.config import quote, shorten
    assert shorten("abcdef", limit=3) == "abc… (6 characters)"
    assert quote("abc") == "'abc'"
    assert quote("x" * 1000, limit=5) == "'xxxx… (1002 characters)"
    ```
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def quote(value: Any, limit: int = MAX_QUOTED) -> str:
    """`repr(value)` for an error message, cut after `limit` characters."""
    return shorten(repr(value), limit)


class NoAliasSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses aliases (`*name`, and so `<<: *name`).

    A few nested aliases expand exponentially ("billion laughs"): 400 bytes
    can make a value whose printing takes minutes. Configs here never need
    them, so the first alias fails, naming its line. Anchors alone are
    harmless and accepted.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"found the alias *{shorten(event.anchor, 40)}; YAML aliases "
                "are not allowed in configs (nested ones expand exponentially), "
                "write the value out instead",
                event.start_mark,
            )
        return super().compose_node(parent, index)


# YAML 1.1 (PyYAML) reads `3e-3` as a string: its floats need a dot. Configs
# also take YAML 1.2's floats, so `3e-3` and `1E5` are numbers everywhere
# (config files, `--params_override`, the `params` of a `type`).
NoAliasSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_error_line(error: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where, no source snippet."""
    if isinstance(error, yaml.MarkedYAMLError):
        where = error.problem_mark or error.context_mark
        text = "; ".join(part for part in (error.context, error.problem) if part)
        if where is not None:
            text += f" (line {where.line + 1}, column {where.column + 1})"
    else:
        text = str(error)
    return shorten(" ".join(text.split()), 2 * MAX_QUOTED)


def load_yaml(text: str, source: str) -> Any:
    """Parses config YAML with `NoAliasSafeLoader`.

    Raises:
        ValueError: one line starting with `source` (e.g. "Config file
            'a.yaml'") on invalid YAML or an alias.
    """
    try:
        return yaml.load(text, Loader=NoAliasSafeLoader)  # A SafeLoader.
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: {yaml_error_line(e)}.") from None


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _unknown_key_error(key: str, where: str, valid: list[str]) -> KeyError:
    hint = did_you_mean(key, valid)
    scope = f"under {quote(where)}" if where else "at the top level"
    return KeyError(
        f"Unknown config key {quote(_join(where, key))}.{hint} Valid keys {scope}: "
        f"{', '.join(sorted(valid))}."
    )


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Checks `value` against the type `hint`; returns the value to store."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)

    def fail() -> TypeError:
        return TypeError(
            f"Config key {key!r} expects {_type_name(hint)}, received "
            f"{type(value).__name__} {quote(value)}."
        )

    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except TypeError:
                continue
        raise fail()
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise fail()
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "1e-3" as a string; a float field accepts it.
            try:
                return float(value)
            except ValueError:
                raise fail() from None
        raise fail()
    if hint is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise fail()
        item = args[0] if args else Any
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise fail()
        return dict(value)
    if isinstance(hint, type) and issubclass(hint, Config):
        if isinstance(value, hint):
            return value
        raise fail()
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise fail()
    return value


@dataclasses.dataclass
class Config:
    """Base class of every config dataclass."""

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    def field_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]

    # ---- reading ----------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """A plain nested dict of builtins, ready for YAML."""
        out = {}
        for name in self.field_names():
            value = getattr(self, name)
            out[name] = _plain(value)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=False)

    def copy(self):
        return copy.deepcopy(self)

    # ---- writing ----------------------------------------------------------

    def override(self, values: dict[str, Any], where: str = "") -> None:
        """Merges a nested dict into this config, strictly and type-checked.

        Nested configs are merged field by field; dict-valued fields are
        merged key by key. When a config that has both `type` and `params`
        fields gets a new `type`, its `params` start empty.
        """
        if not isinstance(values, dict):
            raise TypeError(
                f"Config {where or '(top level)'!r} expects a mapping, received "
                f"{type(values).__name__} {quote(values)}."
            )
        names = self.field_names()
        hints = self._hints()
        if (
            "type" in values
            and "params" in names
            and values["type"] != getattr(self, "type", None)
        ):
            self.params = {}
        for key, value in values.items():
            if key not in names:
                raise _unknown_key_error(str(key), where, names)
            full = _join(where, key)
            current = getattr(self, key)
            if isinstance(current, Config):
                current.override(value, full)
            elif isinstance(current, dict) and isinstance(value, dict):
                merged = dict(current)
                merged.update(value)
                setattr(self, key, _coerce(merged, hints[key], full))
            else:
                setattr(self, key, _coerce(value, hints[key], full))

    def override_dotted(self, items: dict[str, Any]) -> None:
        """Applies `{"a.b.c": value}` overrides; string values go through YAML."""
        for dotted, raw in items.items():
            value = (
                load_yaml(raw, f"--params_override value of {quote(dotted)}")
                if isinstance(raw, str)
                else raw
            )
            parts = dotted.split(".")
            node: Any = self
            where = ""
            for part in parts[:-1]:
                if isinstance(node, Config):
                    if part not in node.field_names():
                        raise _unknown_key_error(part, where, node.field_names())
                    node = getattr(node, part)
                elif isinstance(node, dict):
                    node = node.setdefault(part, {})
                else:
                    raise KeyError(
                        f"Config key {quote(_join(where, part))} cannot be set: "
                        f"{quote(where)} is a {type(node).__name__}, not a config."
                    )
                where = _join(where, part)
            last = parts[-1]
            if isinstance(node, Config):
                node.override({last: value}, where)
            elif isinstance(node, dict):
                node[last] = value
            else:
                raise KeyError(
                    f"Config key {quote(dotted)} cannot be set: {quote(where)} is a "
                    f"{type(node).__name__}, not a config."
                )

    # ---- checking ---------------------------------------------------------

    def validate(self, where: str = "") -> None:
        """Cross-field checks; subclasses extend and call `super().validate`."""
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, Config):
                value.validate(_join(where, name))


def _plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_params_override(text: str) -> dict[str, str]:
    """Splits `a.b=1,c.d=[1, 2]` into `{"a.b": "1", "c.d": "[1, 2]"}`.

    Commas inside brackets or quotes do not split.
    """
    items: dict[str, str] = {}
    depth = 0
    in_quote = ""
    current = ""
    pieces = []
    for ch in text:
        if in_quote:
            current += ch
            if ch == in_quote:
                in_quote = ""
            continue
        if ch in "\"'":
            in_quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += ch
    pieces.append(current)
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        if "=" not in piece:
            raise ValueError(
                f"--params_override item {quote(piece)} is not of the form key=value "
                f"(e.g. trainer.train_steps=100)."
            )
        key, value = piece.split("=", 1)
        items[key.strip()] = value.strip()
    return items
