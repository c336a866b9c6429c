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

With `tensorflow-serving-api` installed the file is parsed by protobuf's
`text_format` into its `ModelServerConfig` proto; without it, by a small strict
parser of the same syntax (fields, `{...}` blocks, quoted strings, integers and
`#` comments). Either way the supported fields are exactly those above; any
other field (`logging_config`, `custom_model_config`, ...) is an error that
names it, so that nothing in a deployment's config is silently ignored.

Imports only the standard library (and the optional protos).
"""

from __future__ import annotations

import dataclasses
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
    try:
        tree = _parse_with_protos(text)
    except ImportError:
        tree = parse_text_proto(text)
    return configs_from_tree(tree, where=path)


def _parse_with_protos(text: str) -> dict:
    from google.protobuf import json_format, text_format
    from tensorflow_serving.config import model_server_config_pb2

    message = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ValueError(f"Invalid ModelServerConfig text proto: {e}") from None
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# ---- the strict fallback parser ----------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+|\#[^\n]*)
      |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      |(?P<number>-?\d+)
      |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<punct>[:{}<>;,])""",
    re.VERBOSE,
)
# Fields that repeat, so that they parse to lists (as MessageToDict gives).
_REPEATED = {"config", "versions", "version_labels"}


def _tokens(text: str):
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            line = text.count("\n", 0, position) + 1
            raise ValueError(
                f"Invalid ModelServerConfig text proto at line {line}: unexpected "
                f"{text[position : position + 20]!r}."
            )
        kind = match.lastgroup
        if kind != "space":
            yield kind, match.group(), text.count("\n", 0, position) + 1
        position = match.end()


def parse_text_proto(text: str) -> dict:
    """Parses the text-proto subset into nested dicts (repeated fields as lists)."""
    tokens = list(_tokens(text))
    tree, index = _parse_message(tokens, 0, closing=None)
    return tree


def _parse_message(tokens, index, closing):
    message: dict = {}
    while index < len(tokens):
        kind, value, line = tokens[index]
        if value == closing:
            return message, index + 1
        if value in (",", ";"):
            index += 1
            continue
        if kind != "ident":
            raise ValueError(f"Line {line}: expected a field name, got {value!r}.")
        field, index = value, index + 1
        if index < len(tokens) and tokens[index][1] == ":":
            index += 1
        if index >= len(tokens):
            raise ValueError(f"Line {line}: field {field!r} has no value.")
        kind, value, line = tokens[index]
        if value in ("{", "<"):
            parsed, index = _parse_message(
                tokens, index + 1, "}" if value == "{" else ">"
            )
        elif kind == "string":
            parsed, index = _unquote(value), index + 1
        elif kind == "number":
            parsed, index = int(value), index + 1
        elif kind == "ident":
            parsed, index = value, index + 1
        else:
            raise ValueError(f"Line {line}: bad value {value!r} for field {field!r}.")
        if field in _REPEATED:
            message.setdefault(field, []).append(parsed)
        elif field in message:
            raise ValueError(f"Line {line}: field {field!r} is set twice.")
        else:
            message[field] = parsed
    if closing is not None:
        raise ValueError(f"Unbalanced braces: a block is not closed with {closing!r}.")
    return message, index


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return body.encode("latin-1", "backslashreplace").decode("unicode_escape")


# ---- from the parsed tree to ModelConfigs --------------------------------------------


def _check_keys(where: str, message: dict, valid) -> None:
    for key in message:
        if key not in valid:
            raise ValueError(
                f"{where}: unsupported field {key!r}. Supported: {', '.join(valid)}."
            )


def configs_from_tree(tree: dict, where: str = "config") -> list[ModelConfig]:
    """Builds `ModelConfig`s from a parsed `ModelServerConfig` (dict form)."""
    _check_keys(where, tree, ("model_config_list",))
    configs = tree.get("model_config_list", {}).get("config", [])
    _check_keys(
        f"{where}: model_config_list", tree.get("model_config_list", {}), ("config",)
    )
    if not configs:
        raise ValueError(f"{where}: model_config_list has no `config` entries.")
    result = [
        _model_config(f"{where}: config #{i + 1}", c) for i, c in enumerate(configs)
    ]
    names = [config.name for config in result]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: model names repeat: {names}.")
    return result


def _model_config(where: str, config: dict) -> ModelConfig:
    _check_keys(where, config, _MODEL_FIELDS)
    platform = config.get("model_platform", "tensorflow")
    if platform != "tensorflow":
        raise ValueError(
            f"{where}: model_platform {platform!r} is not supported. Valid: tensorflow."
        )
    kwargs = {"name": config.get("name", ""), "base_path": config.get("base_path", "")}
    policy = config.get("model_version_policy", {})
    _check_keys(f"{where}: model_version_policy", policy, POLICIES)
    if len(policy) > 1:
        raise ValueError(
            f"{where}: model_version_policy sets {sorted(policy)}; set one."
        )
    if "latest" in policy:
        _check_keys(f"{where}: latest", policy["latest"], ("num_versions",))
        kwargs["num_versions"] = int(policy["latest"].get("num_versions", 1))
    elif "all" in policy:
        kwargs["version_policy"] = "all"
    elif "specific" in policy:
        _check_keys(f"{where}: specific", policy["specific"], ("versions",))
        kwargs["version_policy"] = "specific"
        kwargs["versions"] = tuple(
            int(v) for v in policy["specific"].get("versions", [])
        )
    labels = config.get("version_labels", [])
    if isinstance(labels, dict):  # MessageToDict writes a map as a dict.
        labels = [{"key": key, "value": value} for key, value in labels.items()]
    pairs = []
    for entry in labels:
        _check_keys(f"{where}: version_labels", entry, ("key", "value"))
        pairs.append((str(entry.get("key", "")), int(entry.get("value", 0))))
    kwargs["version_labels"] = tuple(pairs)
    return ModelConfig(**kwargs)
