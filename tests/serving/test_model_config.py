"""serving.model_config: TF Serving's ModelServerConfig text proto, read strictly.

Valid files give the models TF Serving would load; every invalid one is an
error that names the file, the line and what is wrong.
"""

import re

import pytest

from serving import model_config
from serving.model_config import ModelConfig

CONFIG = """
# two models
model_config_list {
  config {
    name: "a"
    base_path: "/models/a"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
  }
  config: { name: 'b' base_path: "/models/b"
            model_version_policy { latest { num_versions: 2 } } }
}
"""


def write(tmp_path, text, name="models.config"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_config_file(tmp_path):
    from_file = model_config.load_config_file(write(tmp_path, CONFIG))
    assert from_file == model_config.parse_config(CONFIG)
    a, b = from_file
    assert (a.name, a.base_path, a.version_policy, a.versions) == (
        "a",
        "/models/a",
        "specific",
        (1, 3),
    )
    assert a.version_labels == (("stable", 1),)
    assert (b.name, b.version_policy, b.num_versions) == ("b", "latest", 2)
    assert a.wanted([1, 2, 3, 4]) == [1, 3] and b.wanted([1, 2, 3, 4]) == [3, 4]


def test_the_other_text_proto_forms_read_alike():
    """<...> blocks, [...] lists, `;` separators, concatenated strings, defaults."""
    text = """
        model_config_list: <
          config: [
            { name: "a" "b" base_path: "/m/ab"; model_version_policy < all {} > },
            { name: "c" base_path: "/m/c"
              model_version_policy { specific { versions: [2, 5] } }
              version_labels { key: "stable" value: 2 }
              version_labels { key: "canary" value: 5 } }
          ]
          config { name: "d" base_path: "/m/d" model_version_policy { latest {} } }
        >
    """
    ab, c, d = model_config.parse_config(text)
    assert ab == ModelConfig("ab", "/m/ab", version_policy="all")
    assert c == ModelConfig(
        "c",
        "/m/c",
        version_policy="specific",
        versions=(2, 5),
        version_labels=(("canary", 5), ("stable", 2)),
    )
    # TF Serving's defaults: the latest version only.
    assert d == ModelConfig("d", "/m/d") == ModelConfig("d", "/m/d", "latest", 1)


# (text, line, message): each error starts with `FILE:LINE`.
BAD_CONFIGS = [
    (
        'model_config_list {\n  config {\n    name: "a" base_path: "/p"\n'
        "    logging_config {}\n  }\n}\n",
        4,
        r"config #1 \('a'\): unsupported field 'logging_config'\. Supported: name, ",
    ),
    (
        'model_config_list {\n  config { name: "a" base_path: "/p" }\n'
        '  config {\n    name: "b"\n    base_path: "/q"\n'
        '    model_platform: "onnx"\n  }\n}\n',
        6,
        r"config #2 \('b'\): model_platform 'onnx' is not supported\. "
        "Valid: tensorflow",
    ),
    (
        'model_config_list {\n  config { name: "a" base_path: "/p" }\n',
        2,
        'invalid ModelServerConfig text proto: Expected "}"',
    ),
    (
        'model_config_list {\n  config { name: "a" basepath: "/p" }\n}\n',
        2,
        "no field named \"basepath\".* Did you mean 'base_path'\\?",
    ),
    (
        '# comment\nmodel_config_list {\n  config { name: "a" base_path: "/p" '
        "model_version_policy { latest {} all {} } }\n}\n",
        3,
        'Field "all" is specified along with field "latest"',
    ),
    ("\n\nmodel_config_list { }\n", 3, "model_config_list has no `config` entries"),
    (
        'model_config_list {\n  config { name: "a" base_path: "/p" }\n'
        '  config { base_path: "/p"\n    name: "a" }\n}\n',
        4,
        r"config #2 \('a'\): the model name repeats",
    ),
    (
        'model_config_list {\n  config { name: "a" base_path: "/p" }\n'
        '  config {\n    base_path: "/q" }\n}\n',
        3,
        "A model config needs a non-empty `name`",
    ),
    (
        'model_config_list {\n\n  config { name: "a" base_path: "/p"\n'
        "    model_version_policy { specific {} } }\n}\n",
        3,
        "model 'a': model_version_policy.specific lists no `versions`",
    ),
    (
        '# models elsewhere\ncustom_model_config { type_url: "x" }\n',
        2,
        r"unsupported field 'custom_model_config'\. Supported: model_config_list",
    ),
]


@pytest.mark.parametrize(
    "text,line,message", BAD_CONFIGS, ids=[m[:30] for _, _, m in BAD_CONFIGS]
)
def test_errors_name_the_file_the_line_and_the_problem(tmp_path, text, line, message):
    path = write(tmp_path, text, "bad.config")
    with pytest.raises(ValueError) as error:
        model_config.load_config_file(path)
    text = str(error.value)
    assert text.startswith(f"{path}:{line}:"), text
    assert re.search(message, text), text


def test_parse_config_names_its_source():
    with pytest.raises(ValueError, match=r"^inline:1:\d+: invalid ModelServerConfig"):
        model_config.parse_config("model_config_list {", where="inline")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.config"):
        model_config.load_config_file(str(tmp_path / "nope.config"))
