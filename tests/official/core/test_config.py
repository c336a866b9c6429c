import dataclasses

import pytest
import yaml

from official.base.config import Config, parse_params_override
from official.core import config_loader
from official.core.experiment_config import DataConfig


@dataclasses.dataclass
class Inner(Config):
    rate: float = 0.1
    name: str = "x"
    sizes: list[int] = dataclasses.field(default_factory=lambda: [1, 2])
    flag: bool = False
    maybe: int | None = None


@dataclasses.dataclass
class Outer(Config):
    steps: int = 10
    inner: Inner = dataclasses.field(default_factory=Inner)
    params: dict = dataclasses.field(default_factory=dict)
    type: str = "a"


def test_defaults_are_not_shared():
    a, b = Outer(), Outer()
    a.inner.sizes.append(3)
    assert b.inner.sizes == [1, 2]


def test_dotted_override_parses_yaml_values():
    cfg = Outer()
    cfg.override_dotted(
        {
            "steps": "20",
            "inner.rate": "1e-3",
            "inner.sizes": "[3, 4]",
            "inner.flag": "true",
            "inner.maybe": "null",
            "params.depth": "18",
        }
    )
    assert cfg.steps == 20
    assert cfg.inner.rate == pytest.approx(1e-3)
    assert cfg.inner.sizes == [3, 4]
    assert cfg.inner.flag is True
    assert cfg.inner.maybe is None
    assert cfg.params == {"depth": 18}


def test_unknown_key_suggests_and_lists():
    cfg = Outer()
    with pytest.raises(KeyError) as e:
        cfg.override_dotted({"inner.rat": "1"})
    message = e.value.args[0]
    assert "Unknown config key 'inner.rat'" in message
    assert "Did you mean 'rate'?" in message
    assert "Valid keys under 'inner': flag, maybe, name, rate, sizes." in message


def test_wrong_type_names_key_and_value():
    cfg = Outer()
    with pytest.raises(TypeError) as e:
        cfg.override_dotted({"steps": "many"})
    assert str(e.value.args[0]) == (
        "Config key 'steps' expects int, received str 'many'."
    )
    with pytest.raises(TypeError, match="'inner.flag' expects bool"):
        cfg.override({"inner": {"flag": 1}})
    with pytest.raises(TypeError, match=r"'inner.sizes\[1\]' expects int"):
        cfg.override({"inner": {"sizes": [1, "b"]}})


def test_yaml_round_trip():
    cfg = Outer()
    cfg.override_dotted({"inner.name": "y", "params.k": "v"})
    loaded = Outer()
    loaded.override(yaml.safe_load(cfg.to_yaml()))
    assert loaded == cfg


def test_type_change_resets_params():
    cfg = Outer(params={"depth": 50})
    cfg.override({"type": "b", "params": {"width": 2}})
    assert cfg.params == {"width": 2}
    cfg.override({"params": {"depth": 3}})
    assert cfg.params == {"width": 2, "depth": 3}


def test_parse_params_override_keeps_brackets():
    items = parse_params_override("a.b=1, c=[1, 2],d={x: 1, y: 2},e='p,q'")
    assert items == {"a.b": "1", "c": "[1, 2]", "d": "{x: 1, y: 2}", "e": "'p,q'"}
    with pytest.raises(ValueError, match="key=value"):
        parse_params_override("novalue")


def test_data_config_source_errors_name_keys():
    with pytest.raises(ValueError) as e:
        DataConfig().check_source("task.train_data")
    assert "Set `task.train_data.input_path`" in str(e.value)
    assert "--params_override=task.train_data.input_path=" in str(e.value)
    with pytest.raises(
        ValueError, match="set exactly one of `input_path`, `tfds_name`"
    ):
        DataConfig(input_path="a", tfds_name="b", tfds_split="train").validate("d")


def test_experiment_loader_layers_in_order(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("trainer:\n  train_steps: 44\n  steps_per_loop: 11\n")
    cfg = config_loader.load_experiment_config(
        "resnet_digits",
        [str(path)],
        "trainer.steps_per_loop=22,trainer.train_steps=66,"
        "task.train_data.input_path=a,task.validation_data.input_path=b",
    )
    assert cfg.trainer.train_steps == 66
    assert cfg.trainer.steps_per_loop == 22


def test_experiment_loader_errors(tmp_path):
    with pytest.raises(
        KeyError, match="Unknown experiment 'resnet_digit'.*resnet_digits"
    ):
        config_loader.load_experiment_config("resnet_digit")
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  train_step: 4\n")
    with pytest.raises(
        KeyError, match="In config file .*bad.yaml.*Did you mean 'train_steps'"
    ):
        config_loader.load_experiment_config("resnet_digits", [str(path)])
    with pytest.raises(
        KeyError, match="Unknown config key 'task.train_data.batch_size'"
    ):
        config_loader.load_experiment_config(
            "resnet_digits", params_override="task.train_data.batch_size=3"
        )
    # An invalid backbone parameter is caught when the config is validated.
    with pytest.raises(KeyError, match="model_idd.*Did you mean 'model_id'"):
        config_loader.load_experiment_config(
            "resnet_digits",
            params_override="task.model.backbone.params.model_idd=18,"
            "task.train_data.input_path=a,task.validation_data.input_path=b",
        )


# Keys a recipe may leave for the user (weights, a preset directory); a recipe
# whose validation refuses to run without them is given placeholders.
USER_SUPPLIED = {
    "trainer.init_checkpoint": "store:weights",
    "task.model.preset": "/presets/model",
    "task.model.tokenizer_preset": "/presets/tokenizer",
}


def _get(cfg, dotted):
    for part in dotted.split("."):
        cfg = getattr(cfg, part, None)
    return cfg


def test_every_experiment_builds_a_valid_config():
    from official.base.config import ConfigError
    from official.core import exp_factory

    for name, _ in exp_factory.describe_experiments():
        cfg = exp_factory.get_exp_config(name)
        for split in ("train_data", "validation_data"):
            data = getattr(cfg.task, split, None)
            if data is not None and not (data.input_path or data.tfds_name):
                cfg.override_dotted({f"task.{split}.input_path": "x"})
        for _ in range(len(USER_SUPPLIED) + 1):
            try:
                cfg.validate()
                break
            except (ConfigError, ValueError) as e:
                # Only a refusal that names an empty user-supplied key passes.
                named = {
                    k: v
                    for k, v in USER_SUPPLIED.items()
                    if k in str(e) and _get(cfg, k) == ""
                }
                assert named, f"{name}: {e}"
                cfg.override_dotted(named)
        else:
            raise AssertionError(f"{name} never validated")
