"""Config YAML from users: aliases refused, errors one line and bounded.

A "billion laughs" file (nested anchors and aliases) used to take 47 s and
end in a 32 MB message. Aliases are now refused at the first one, so such a
file fails on its second line whatever its depth; configs here use none.
"""

import dataclasses
import glob
import os

import pytest

from official.base.config import (
    MAX_QUOTED,
    Config,
    load_yaml,
    parse_params_override,
    quote,
    shorten,
)
from official.core.config_loader import load_yaml_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def billion_laughs(levels: int = 9) -> str:
    """About 440 bytes that would expand to 9**levels strings."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"task: *l{levels - 1}")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Inner(Config):
    rate: float = 0.1
    names: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outer(Config):
    steps: int = 10
    inner: Inner = dataclasses.field(default_factory=Inner)


# ---- aliases -----------------------------------------------------------------------


def test_billion_laughs_file_is_refused_at_the_first_alias(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert len(path.read_bytes()) < 500
    with pytest.raises(ValueError) as info:
        load_yaml_file(str(path))
    message = str(info.value)
    assert message == (
        f"Config file {str(path)!r}: found the alias *l0; YAML aliases are not "
        "allowed in configs (nested ones expand exponentially), write the value "
        "out instead (line 2, column 10)."
    )


def test_alias_in_params_override_is_refused():
    config = Outer()
    with pytest.raises(ValueError, match=r"^--params_override value of 'inner\.names'"):
        config.override_dotted({"inner.names": "[&a x, *a]"})
    assert config.inner.names == []


def test_merge_key_alias_is_refused():
    with pytest.raises(ValueError, match=r"^f.yaml: found the alias \*base; "):
        load_yaml("base: &base {a: 1}\nother:\n  <<: *base\n", "f.yaml")


def test_anchors_without_aliases_and_plain_yaml_load():
    assert load_yaml("a: &x 1\nb: [1, 2]\nc: {d: e}\n", "f") == {
        "a": 1,
        "b": [1, 2],
        "c": {"d": "e"},
    }
    assert load_yaml("", "f") is None


def test_every_shipped_config_loads():
    paths = sorted(
        glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
    )
    assert paths
    for path in paths:
        assert isinstance(load_yaml_file(path), dict), path


# ---- one-line errors naming the source ------------------------------------------------


def test_invalid_yaml_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  train_steps: [1, 2\n")
    with pytest.raises(ValueError) as info:
        load_yaml_file(str(path))
    message = str(info.value)
    assert message.startswith(f"Config file {str(path)!r}: ")
    assert "line 3" in message and "\n" not in message


def test_unreadable_and_binary_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"bin.yaml' is not UTF-8 text"):
        (tmp_path / "bin.yaml").write_bytes(b"a: \xff\xfe\n")
        load_yaml_file(str(tmp_path / "bin.yaml"))
    with pytest.raises(ValueError, match=r"'.*dir.yaml' cannot be read: "):
        (tmp_path / "dir.yaml").mkdir()
        load_yaml_file(str(tmp_path / "dir.yaml"))


# ---- long values are quoted, not echoed ------------------------------------------------


def test_quote_and_shorten():
    assert quote("abc") == "'abc'"
    assert shorten("a" * 10, limit=4) == "aaaa… (10 characters)"
    long = quote(list(range(100_000)))
    assert long.endswith(f"… ({len(repr(list(range(100_000))))} characters)")
    assert len(long) < MAX_QUOTED + 30


def test_a_long_wrong_typed_value_is_cut_in_the_error():
    huge = "x" * 1_000_000
    with pytest.raises(TypeError) as info:
        Outer().override({"steps": huge})
    message = str(info.value)
    assert message.startswith("Config key 'steps' expects int, received str 'xxx")
    assert message.endswith("… (1000002 characters).")
    assert len(message) < 400


def test_a_long_mapping_where_a_config_belongs_is_cut():
    with pytest.raises(TypeError, match=r"… \(\d+ characters\)\.$") as info:
        Outer().override({"inner": list(range(100_000))})
    assert len(str(info.value)) < 400


def test_a_long_unknown_key_is_cut():
    with pytest.raises(KeyError) as info:
        Outer().override({"k" * 100_000: 1})
    assert len(str(info.value)) < 600
    assert "(100002 characters)" in str(info.value)


def test_a_long_malformed_override_is_cut():
    with pytest.raises(ValueError) as info:
        parse_params_override("y" * 100_000)
    assert len(str(info.value)) < 400
    assert "(100002 characters)" in str(info.value)


def test_exponent_floats_without_a_dot_are_numbers():
    from official.base.config import load_yaml

    values = load_yaml("a: 3e-3\nb: 1E5\nc: -2e+2\nd: 1\ne: 3e\nf: e5", "test")
    assert values == {"a": 0.003, "b": 1e5, "c": -200.0, "d": 1, "e": "3e", "f": "e5"}
    assert isinstance(values["a"], float) and isinstance(values["d"], int)


def test_a_learning_rate_override_in_exponent_form_reaches_the_schedule():
    from official.core import config_loader

    config = config_loader.load_experiment_config(
        "resnet_digits",
        [],
        config_loader.parse_params_override(
            "trainer.optimizer_config.learning_rate.params.initial_learning_rate=3e-3"
        ),
    )
    lr = config.trainer.optimizer_config.learning_rate.params
    assert lr["initial_learning_rate"] == 0.003
