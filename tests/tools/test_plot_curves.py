"""tools/plot_curves.py: curves of a real (tiny) training run as a PNG."""

import importlib.util
import os
import pathlib

import keras
import pytest

from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "plot_curves_tool", ROOT / "tools" / "plot_curves.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(digits_dir, tmp_path_factory):
    """4 train steps, one loop each, evaluated at steps 2 and 4."""
    cfg = load_experiment_config(
        "resnet_digits",
        params_override={
            "task.train_data.input_path": os.path.join(digits_dir, "train-*"),
            "task.validation_data.input_path": os.path.join(digits_dir, "validation-*"),
            "task.train_data.global_batch_size": 8,
            "task.validation_data.global_batch_size": 32,
            "task.model.input_size": [16, 16, 3],
            "task.model.backbone.params.width_multiplier": 0.125,
            "trainer.optimizer_config.reference_batch_size": 0,
            "trainer.train_steps": 4,
            "trainer.steps_per_loop": 1,
            "trainer.checkpoint_interval": 4,
            "trainer.validation_interval": 2,
            "trainer.validation_steps": 1,
        },
    )
    path = str(tmp_path_factory.mktemp("curves") / "run")
    run_experiment(cfg, "train_and_eval", path)
    keras.backend.clear_session()
    return path


def _is_png(path):
    data = pathlib.Path(path).read_bytes()
    return len(data) > 1000 and data.startswith(PNG_SIGNATURE) and b"IEND" in data[-12:]


def test_plots_train_and_validation_of_a_real_run(tool, model_dir, tmp_path):
    output = str(tmp_path / "plots" / "curves.png")
    curves = tool.plot_curves(model_dir, output, ["loss", "accuracy"])
    assert _is_png(output)
    assert list(curves) == ["loss", "accuracy"]
    for metric in ("loss", "accuracy"):
        assert [s for s, _ in curves[metric]["train"]] == [1, 2, 3, 4]
        assert [s for s, _ in curves[metric]["validation"]] == [2, 4]
        assert all(isinstance(v, float) for _, v in curves[metric]["train"])
    assert all(v > 0 for _, v in curves["loss"]["train"])


def test_default_plots_every_scalar_into_model_dir(tool, model_dir):
    curves = tool.plot_curves(model_dir)
    assert _is_png(os.path.join(model_dir, "curves.png"))
    assert list(curves)[0] == "loss"
    assert {"accuracy", "learning_rate", "examples_per_second"} <= set(curves)
    assert "validation" not in curves["learning_rate"]


def test_later_writes_of_a_step_win(tool, tmp_path):
    """A resumed run writes steps again in a newer event file."""
    import tensorflow as tf

    for stamp, values in ((1, {1: 5.0, 2: 4.0, 3: 3.0}), (2, {3: 2.5, 4: 2.0})):
        directory = tmp_path / "train"
        writer = tf.summary.create_file_writer(
            str(directory), filename_suffix=str(stamp)
        )
        with writer.as_default():
            for step, value in values.items():
                tf.summary.scalar("loss", value, step=step)
        writer.close()
    curves = tool.read_curves(str(tmp_path))
    assert curves == {"loss": {"train": [(1, 5.0), (2, 4.0), (3, 2.5), (4, 2.0)]}}


def test_errors_name_the_directory_and_the_tags(tool, model_dir, tmp_path, capsys):
    empty = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"{empty}/train or {empty}/validation"):
        tool.plot_curves(empty)
    with pytest.raises(KeyError, match="did not write: acc. Scalars found: loss, "):
        tool.plot_curves(model_dir, str(tmp_path / "x.png"), ["loss", "acc"])
    assert tool.main(["plot_curves"]) == 2
    assert tool.main(["plot_curves", f"--model_dir={empty}"]) == 1
    assert "No TensorBoard event files" in capsys.readouterr().err


def test_main_writes_the_png(tool, model_dir, tmp_path, capsys):
    output = str(tmp_path / "main.png")
    code = tool.main(
        [
            "plot_curves",
            f"--model_dir={model_dir}",
            f"--output={output}",
            "--metrics=loss,top_2_accuracy",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert _is_png(output)
    assert "loss: train 4 points, validation 2 points" in out
    assert f"Wrote {output}" in out


def test_missing_matplotlib_names_the_pip_command(tool, model_dir, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        tool.plot_curves(model_dir)
