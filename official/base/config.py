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
import types
import typing
from typing import Any, Union

import yaml

from official.base.suggest import did_you_mean


class ConfigError(ValueError):
    """A config that cannot run as given; the message names the key to set."""


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _unknown_key_error(key: str, where: str, valid: list[str]) -> KeyError:
    hint = did_you_mean(key, valid)
    scope = f"under {where!r}" if where else "at the top level"
    return KeyError(
        f"Unknown config key {_join(where, key)!r}.{hint} Valid keys {scope}: "
        f"{', '.join(sorted(valid))}."
    )


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Checks `value` against the type `hint`; returns the value to store."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)

    def fail() -> TypeError:
        return TypeError(
            f"Config key {key!r} expects {_type_name(hint)}, received "
            f"{type(value).__name__} {value!r}."
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
                f"{type(values).__name__} {values!r}."
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
            value = yaml.safe_load(raw) if isinstance(raw, str) else raw
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
                        f"Config key {_join(where, part)!r} cannot be set: "
                        f"{where!r} is a {type(node).__name__}, not a config."
                    )
                where = _join(where, part)
            last = parts[-1]
            if isinstance(node, Config):
                node.override({last: value}, where)
            elif isinstance(node, dict):
                node[last] = value
            else:
                raise KeyError(
                    f"Config key {dotted!r} cannot be set: {where!r} is a "
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
    quote = ""
    current = ""
    pieces = []
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
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
                f"--params_override item {piece!r} is not of the form key=value "
                f"(e.g. trainer.train_steps=100)."
            )
        key, value = piece.split("=", 1)
        items[key.strip()] = value.strip()
    return items
