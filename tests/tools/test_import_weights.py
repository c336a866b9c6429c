"""tools/import_weights.py: a keras.applications weights file to a Garden checkpoint.

End to end: the test writes the weights file from a random keras.applications
model, the tool writes a checkpoint, and `trainer.init_checkpoint`'s restore
(`checkpoints.initialize_from_checkpoint`) loads it into a fresh model of the
same experiment, whose outputs then equal the keras model's.
"""

import importlib.util
import json
import pathlib
import re
import shlex
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

from official.core import checkpoints, task_factory
from official.core.config_loader import load_experiment_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIZE = 96


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "import_weights_tool", ROOT / "tools" / "import_weights.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize(model, seed=0):
    """Random biases and batch-norm parameters and moving statistics.

    Moving variances stay in [0.5, 1.5]: statistics taken from a few tiny
    images leave channels with variances near 0, whose 1/sqrt(variance) gain
    amplifies float32 rounding (up to 2e-3 on EfficientNet logits of scale
    300) without saying anything about the mapping.
    """
    rng = np.random.default_rng(seed)
    draws = {
        "bias": lambda shape: rng.normal(0, 0.1, shape),
        "beta": lambda shape: rng.normal(0, 0.1, shape),
        "gamma": lambda shape: rng.uniform(0.5, 1.5, shape),
        "moving_mean": lambda shape: rng.normal(0, 0.1, shape),
        "moving_variance": lambda shape: rng.uniform(0.5, 1.5, shape),
    }
    for layer in model.layers:
        for variable in layer.weights:
            if variable.name in draws:
                variable.assign(draws[variable.name](variable.shape))
    return model


def pixels(batch, seed):
    shape = (batch, SIZE, SIZE, 3)
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


@pytest.fixture(scope="module")
def keras_model_and_file(tmp_path_factory):
    """A random MobileNetV2 (96 px, 10 classes, logits) and its .weights.h5."""
    model = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3),
        classes=10,
        weights=None,
        classifier_activation=None,
    )
    randomize(model)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.weights.h5"
    model.save_weights(str(path))
    return model, str(path)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    task = {"model": {"input_size": [SIZE, SIZE, 3], "num_classes": 10}}
    path.write_text(yaml.safe_dump({"task": task}))
    return str(path)


def flags(weights_file, output_dir, config_file, architecture="mobilenet_v2"):
    return [
        "import_weights",
        "--source=keras_applications",
        f"--architecture={architecture}",
        f"--weights_file={weights_file}",
        "--experiment=mobilenet_imagenet",
        f"--config_file={config_file}",
        f"--output_dir={output_dir}",
    ]


def test_writes_a_checkpoint_that_init_checkpoint_restores(
    tool, keras_model_and_file, config_file, tmp_path, capsys
):
    source, weights_file = keras_model_and_file
    out = tmp_path / "imported"
    assert tool.main(flags(weights_file, out, config_file)) == 0
    printed = capsys.readouterr().out
    assert "Verified against keras.applications" in printed
    assert f"trainer.init_checkpoint={out}" in printed
    record = json.loads((out / "import_report.json").read_text())
    assert record["missing"] == [] and record["skipped_by_shape"] == []
    assert record["verification"]["max_abs_diff"] <= 1e-5
    assert (out / "ckpt-1.index").exists()

    # What the trainer does with trainer.init_checkpoint=<out>.
    config = load_experiment_config("mobilenet_imagenet", [config_file])
    fresh = task_factory.get_task(config.task).build_model()
    restored = checkpoints.initialize_from_checkpoint(fresh, str(out))
    assert restored.missing == [] and len(restored.matched) == len(fresh.weights)
    x = pixels(2, 5)
    gap = np.max(np.abs(np.asarray(source(x)) - np.asarray(fresh(x))))
    assert gap <= 1e-5, gap

    # A second import into the same directory is refused.
    assert tool.main(flags(weights_file, out, config_file)) == 1
    assert "already holds a checkpoint" in capsys.readouterr().err


def test_errors(tool, keras_model_and_file, config_file, tmp_path, capsys):
    _, weights_file = keras_model_and_file
    out = tmp_path / "never"
    args = flags(weights_file, out, config_file, architecture="resnet50")
    assert tool.main(args) == 1
    assert "ResNet v1" in capsys.readouterr().err
    args = flags(weights_file, out, config_file, architecture="efficientnet")
    assert tool.main(args) == 1
    assert "need a Garden EfficientNet backbone" in capsys.readouterr().err
    narrow = flags(weights_file, out, config_file) + [
        "--params_override=task.model.backbone.params.width_multiplier=0.5"
    ]
    assert tool.main(narrow) == 1
    assert "does not fit" in capsys.readouterr().err
    assert not out.exists()
    assert tool.main(["import_weights", "--architecture=mobilenet_v2"]) == 2


@pytest.mark.slow
def test_readme_command(tmp_path):
    """The README's command, as written, on a 224 px ImageNet-shaped file."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^python tools/import_weights\.py .*$", readme, re.M)
    model = keras.applications.MobileNetV2(weights=None)  # 224 px, 1000 classes
    model.save_weights(str(tmp_path / "mobilenet_v2.weights.h5"))
    argv = shlex.split(command.group(0).replace("\\\n", " "))
    argv[1] = str(ROOT / argv[1])
    run = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "runs" / "imported_mobilenet_v2" / "ckpt-1.index").exists()


def test_help_and_bad_flag(tool, capsys):
    assert tool.main(["import_weights", "--help"]) == 0
    out = capsys.readouterr().out
    assert tool.__doc__.strip().splitlines()[0] in out and "flags:" in out
    assert tool.main(["import_weights", "--no_such_flag=1"]) == 2
    assert "no_such_flag" in capsys.readouterr().err


def test_runs_as_a_script_from_the_checkout(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_weights.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flags:" in result.stdout


# --source=keras_hub: a tiny keras-hub ViT preset into the vit_imagenet experiment.
HUB_SIZE = 32


@pytest.fixture(scope="module")
def vit_preset(tmp_path_factory):
    keras_hub = pytest.importorskip("keras_hub")
    source = keras_hub.models.ViTBackbone(
        image_shape=(HUB_SIZE, HUB_SIZE, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
    )
    rng = np.random.default_rng(0)
    for variable in source.weights:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
    path = tmp_path_factory.mktemp("presets") / "tiny_vit"
    source.save_to_preset(str(path))
    return source, str(path)


@pytest.fixture(scope="module")
def vit_config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny_vit.yaml"
    backbone = {
        "type": "vit",
        "params": {
            "model_id": "ti16",
            "patch_size": 8,
            "hidden_size": 16,
            "num_layers": 2,
            "num_heads": 2,
            "mlp_dim": 32,
        },
    }
    task = {
        "model": {
            "input_size": [HUB_SIZE, HUB_SIZE, 3],
            "num_classes": 10,
            "backbone": backbone,
        }
    }
    path.write_text(yaml.safe_dump({"task": task}))
    return str(path)


def hub_flags(preset, output_dir, config_file):
    return [
        "import_weights",
        "--source=keras_hub",
        f"--preset={preset}",
        "--experiment=vit_imagenet",
        f"--config_file={config_file}",
        f"--output_dir={output_dir}",
    ]


def test_keras_hub_preset_to_a_checkpoint(
    tool, vit_preset, vit_config_file, tmp_path, capsys
):
    source, preset = vit_preset
    out = tmp_path / "imported_vit"
    assert tool.main(hub_flags(preset, out, vit_config_file)) == 0
    printed = capsys.readouterr().out
    assert "Verified against keras-hub: max |diff| of the tokens" in printed
    record = json.loads((out / "import_report.json").read_text())
    assert record["source_kind"] == "keras_hub" and record["source"] == preset
    assert record["unused"] == [] and record["skipped_by_shape"] == []
    assert record["missing"] and all(
        "no classifier" in m["reason"] for m in record["missing"]
    )
    assert len(record["matched"]) == len(source.weights)
    assert record["verification"]["max_abs_diff"] <= record["verification"]["tolerance"]

    # What the trainer does with trainer.init_checkpoint=<out>.
    config = load_experiment_config("vit_imagenet", [vit_config_file])
    fresh = task_factory.get_task(config.task).build_model()
    checkpoints.initialize_from_checkpoint(fresh, str(out))
    from official.vision.importers.keras_hub_vision import compare_outputs

    x = np.random.default_rng(7).uniform(-1, 1, (2, HUB_SIZE, HUB_SIZE, 3))
    gap, scale, _ = compare_outputs(source, fresh, x.astype("float32"))
    assert gap <= 1e-5 * scale, (gap, scale)


def test_keras_hub_errors(
    tool, vit_preset, vit_config_file, tmp_path, capsys, monkeypatch
):
    _, preset = vit_preset
    out = tmp_path / "never"
    args = hub_flags(preset, out, vit_config_file)
    assert tool.main([a for a in args if not a.startswith("--preset")]) == 2
    assert "--preset is required with --source=keras_hub" in capsys.readouterr().err
    assert tool.main(args + ["--weights_file=x.h5"]) == 1
    assert (
        "--weights_file is not used with --source=keras_hub" in capsys.readouterr().err
    )
    deeper = args + ["--params_override=task.model.backbone.params.num_layers=3"]
    assert tool.main(deeper) == 1
    assert "does not fit the Garden backbone" in capsys.readouterr().err
    assert tool.main(hub_flags(tmp_path / "absent", out, vit_config_file)) == 1
    assert "No keras-hub preset directory" in capsys.readouterr().err
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    assert tool.main(args) == 1
    assert 'pip install -e ".[hub]"' in capsys.readouterr().err


@pytest.mark.slow
def test_readme_keras_hub_command(tmp_path):
    """The README's keras-hub command, as written, on a random ViT-B/16 preset."""
    keras_hub = pytest.importorskip("keras_hub")
    readme = (ROOT / "README.md").read_text()
    command = re.search(
        r"^python tools/import_weights\.py --source=keras_hub .*$", readme, re.M
    )
    argv = shlex.split(command.group(0))
    preset = next(a.split("=", 1)[1] for a in argv if a.startswith("--preset="))
    source = keras_hub.models.ViTBackbone(
        image_shape=(224, 224, 3),
        patch_size=16,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        mlp_dim=3072,
    )
    source.save_to_preset(str(tmp_path / preset))
    del source
    argv[1] = str(ROOT / argv[1])
    run = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Verified against keras-hub" in run.stdout
    out = re.search(r"--output_dir=(\S+)", command.group(0)).group(1)
    assert (tmp_path / out / "ckpt-1.index").exists()


def test_keras_hub_resnet_preset(tool, tmp_path, capsys):
    """A keras-hub ResNet v1 preset into resnet_digits' ResNet-10, PyTorch padding."""
    keras_hub = pytest.importorskip("keras_hub")
    source = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )
    rng = np.random.default_rng(1)
    for variable in source.weights:
        if variable.name in ("gamma", "moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
    source.save_to_preset(str(tmp_path / "resnet"))
    params = "task.model.backbone.params"
    argv = [
        "import_weights",
        "--source=keras_hub",
        f"--preset={tmp_path / 'resnet'}",
        "--experiment=resnet_digits",
        f"--output_dir={tmp_path / 'out'}",
    ]
    assert tool.main(argv) == 1
    assert "set padding='symmetric'" in capsys.readouterr().err
    override = (
        f"--params_override={params}.width_multiplier=1.0,"
        f"{params}.padding=symmetric,{params}.norm_epsilon=0.00001"
    )
    assert tool.main(argv + [override]) == 0
    assert "max |diff| of the feature maps" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "import_report.json").read_text())
    assert len(record["matched"]) == len(source.weights) and record["unused"] == []
