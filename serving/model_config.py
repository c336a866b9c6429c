"""Which models the server loads: `--model_name/--model_base_path` or a config file.

`--model_config_file` takes TF Serving's text-proto `ModelServerConfig`:

    model_config_list {
      config {
        name: "digits"
        base_path: "/models/digits"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }  # all {}, specific {}
        version_labels { key: "stable" value: 1 }
      }
      config { name: "other" base_path: "/models/other" }
    }

The file is parsed by protobuf's `text_format` into TF Serving's own
`ModelServerConfig` proto (`tensorflow_serving.config.model_server_config_pb2`,
from `tensorflow-serving-api`: the extra `serving`), so any text TF Serving
reads is read the same way. The supported fields are exactly those above; any
other field (`logging_config`, `custom_model_config`, ...) is an error, so that
nothing in a deployment's config is silently ignored. Every error names the
file, the line and what is wrong, e.g.
`models.config:5: config #1 ('digits'): unsupported field 'logging_config'.`

Example:
```python
from serving import model_config

text = '''
model_config_list {
  config { name: "digits" base_path: "/models/digits" }
  config {
    name: "other"
    base_path: "/models/other"
    model_version_policy { specific { versions: 1 versions: 3 } }
    logging_config {}
  }
}
'''
try:
    model_config.parse_config(text, where="models.config")
except ValueError as e:
    error = str(e)
assert error.startswith("models.config:8: config #2 ('other'): unsupported field")
digits, other = model_config.parse_config(text.replace("logging_config {}", ""))
assert (digits.name, digits.version_policy, digits.num_versions) == ("digits", "latest", 1)
assert other.wanted([1, 2, 3]) == [1, 3]
```

Imports the standard library; the protos only when a config file is read.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re

POLICIES = ("latest", "all", "specific")
_MODEL_FIELDS = (
    "name",
    "base_path",
    "model_platform",
    "model_version_policy",
    "version_labels",
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Args:
        name: the model's name in request URLs and `ModelSpec.name`.
        base_path: the directory holding numbered version subdirectories.
        version_policy: "latest" (the `num_versions` highest), "all", or
            "specific" (exactly `versions`), as TF Serving's
            `model_version_policy`.
        num_versions: for "latest"; TF Serving's default is 1.
        versions: for "specific".
        version_labels: label -> version, for `/labels/LABEL` and
            `ModelSpec.version_label`.
    """

    name: str
    base_path: str
    version_policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    version_labels: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        where = f"model {self.name!r}"
        if not self.name:
            raise ValueError("A model config needs a non-empty `name`.")
        if not self.base_path:
            raise ValueError(f"{where}: `base_path` is empty.")
        if self.version_policy not in POLICIES:
            raise ValueError(
                f"{where}: unknown version policy {self.version_policy!r}. "
                f"Valid: {', '.join(POLICIES)}."
            )
        if self.version_policy == "latest" and self.num_versions < 1:
            raise ValueError(
                f"{where}: model_version_policy.latest.num_versions must be >= 1. "
                f"Received: {self.num_versions}."
            )
        if self.version_policy == "specific" and not self.versions:
            raise ValueError(
                f"{where}: model_version_policy.specific lists no `versions`."
            )

    def wanted(self, available: list[int]) -> list[int]:
        """The versions to serve out of the `available` ones on disk."""
        available = sorted(set(available))
        if self.version_policy == "all":
            return available
        if self.version_policy == "specific":
            return [v for v in available if v in self.versions]
        return available[-self.num_versions :]


def from_flags(model_name: str, model_base_path: str) -> list[ModelConfig]:
    """The single model given by `--model_name` and `--model_base_path`."""
    return [ModelConfig(name=model_name, base_path=model_base_path)]


def load_config_file(path: str) -> list[ModelConfig]:
    """Parses a `ModelServerConfig` text proto file (see the module docstring)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--model_config_file {path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return parse_config(text, where=path)


def parse_config(text: str, where: str = "<model config>") -> list[ModelConfig]:
    """Parses `ModelServerConfig` text; errors start with `where:LINE:`.

    Raises:
        ValueError: the text does not parse, sets an unsupported field or
            describes an invalid model.
        ImportError: `tensorflow-serving-api` is not installed.
    """
    try:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2
    except ImportError as e:
        raise ImportError(
            f"Reading {where!r} needs TF Serving's protos: install the extra "
            "`serving` (pip install tensorflow-serving-api), or serve one model "
            f"with --model_name and --model_base_path. ({e})"
        ) from None
    message = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ValueError(_parse_error(where, e, message)) from None
    return _configs(message, _field_lines(text_format, text), where)


def _parse_error(where: str, error, message) -> str:
    """`where:LINE:COLUMN: ...`, with a did-you-mean for a misspelt field."""
    detail = re.sub(r"^\d+(:\d+)? : ", "", str(error))
    location = where
    if error.GetLine() is not None:
        location += f":{error.GetLine()}"
        if error.GetColumn() is not None:
            location += f":{error.GetColumn()}"
    unknown = re.search(r'Message type "([\w.]+)" has no field named "(\w+)"', detail)
    if unknown:
        try:
            descriptor = message.DESCRIPTOR.file.pool.FindMessageTypeByName(
                unknown.group(1)
            )
        except KeyError:
            descriptor = None
        fields = [f.name for f in descriptor.fields] if descriptor else []
        close = difflib.get_close_matches(unknown.group(2), fields, n=1)
        if close:
            detail += f" Did you mean {close[0]!r}?"
    return f"{location}: invalid ModelServerConfig text proto: {detail}"


def _field_lines(text_format, text: str) -> dict[tuple, int]:
    """The line of each field of `text`, which parsed: `{path: line}`.

    A path lists `(field name, occurrence)` from the top, e.g.
    `(("model_config_list", 0), ("config", 1), ("name", 0))` is the second
    model's name. Walks protobuf's own tokenizer; the lines only locate error
    messages, so a text it does not follow gives fewer lines, never an error.
    """
    tokenizer = text_format.Tokenizer(text.split("\n"))
    lines: dict[tuple, int] = {}

    def line() -> int:
        return tokenizer.ParseError("").GetLine()

    def block(path: tuple, end: str) -> None:
        seen: dict[str, int] = {}
        while not tokenizer.AtEnd() and not tokenizer.TryConsume(end):
            if tokenizer.TryConsume(",") or tokenizer.TryConsume(";"):
                continue
            name, at = tokenizer.token, line()
            tokenizer.NextToken()
            tokenizer.TryConsume(":")
            if not tokenizer.TryConsume("["):
                value(path, name, seen, at)
                continue
            while not tokenizer.AtEnd() and not tokenizer.TryConsume("]"):
                if not tokenizer.TryConsume(","):
                    value(path, name, seen, line())

    def value(path: tuple, name: str, seen: dict, at: int) -> None:
        seen[name] = seen.get(name, -1) + 1
        key = (*path, (name, seen[name]))
        lines.setdefault(key, at)
        if tokenizer.token in ("{", "<"):
            end = "}" if tokenizer.token == "{" else ">"
            tokenizer.NextToken()
            block(key, end)
            return
        tokenizer.NextToken()
        while tokenizer.token[:1] in ("'", '"'):  # adjacent strings join
            tokenizer.NextToken()

    try:
        block((), "")
    except Exception:  # Best effort: fewer lines, the same errors.
        pass
    return lines


# ---- from the parsed proto to ModelConfigs -------------------------------------------


def _configs(message, lines: dict, where: str) -> list[ModelConfig]:
    def at(*path) -> str:
        """`where:LINE` of the field at `path` (or of its closest parent)."""
        while path and path not in lines:
            path = path[:-1]
        return f"{where}:{lines[path]}" if path else where

    _check_fields(message, ("model_config_list",), lambda name: at((name, 0)))
    if not message.model_config_list.config:
        raise ValueError(
            f"{at(('model_config_list', 0))}: model_config_list has no `config` "
            "entries."
        )
    result = []
    for index, config in enumerate(message.model_config_list.config):
        path = (("model_config_list", 0), ("config", index))

        def field_at(*names, path=path) -> str:
            return at(*path, *((name, 0) for name in names))

        prefix = f"config #{index + 1}" + (f" ({config.name!r})" if config.name else "")
        _check_fields(config, _MODEL_FIELDS, field_at, f"{prefix}: ")
        result.append(_model_config(config, prefix, field_at))
        names = [c.name for c in result]
        if names.count(config.name) > 1:
            raise ValueError(
                f"{field_at('name')}: {prefix}: the model name repeats; names "
                f"must be unique. Names: {names}."
            )
    return result


def _check_fields(message, valid, field_at, context: str = "") -> None:
    """Raises for the first field set in `message` that is not in `valid`."""
    for field, _ in message.ListFields():
        if field.name not in valid:
            raise ValueError(
                f"{field_at(field.name)}: {context}unsupported field "
                f"{field.name!r}. Supported: {', '.join(valid)}."
            )


def _model_config(config, prefix: str, field_at) -> ModelConfig:
    platform = config.model_platform or "tensorflow"
    if platform != "tensorflow":
        raise ValueError(
            f"{field_at('model_platform')}: {prefix}: model_platform {platform!r} "
            "is not supported. Valid: tensorflow."
        )
    kwargs = {"name": config.name, "base_path": config.base_path}
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "latest":
        # proto3 cannot tell `num_versions: 0` from unset; TF Serving reads both as 1.
        kwargs["num_versions"] = int(policy.latest.num_versions) or 1
    elif choice == "all":
        kwargs["version_policy"] = "all"
    elif choice == "specific":
        kwargs["version_policy"] = "specific"
        kwargs["versions"] = tuple(int(v) for v in policy.specific.versions)
    kwargs["version_labels"] = tuple(
        (str(label), int(version))
        for label, version in sorted(config.version_labels.items())
    )
    try:
        return ModelConfig(**kwargs)
    except ValueError as e:
        raise ValueError(f"{field_at()}: {e}") from None
