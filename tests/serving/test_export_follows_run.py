"""`serving.export --checkpoint_path=model_dir` takes its config from the run.

A run directory here is what training leaves: `params.yaml` (written by
`train_lib.write_params`) beside a checkpoint of the model. The models are the
`resnet_digits` experiment's (ResNet-10 at a quarter width, 32 px), untrained.
"""

import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from official.core import config_loader, task_factory, train_lib
from official.datasets.synthetic import write_synthetic_image_folder
from serving import export, run_config


def _run_dir(path, config):
    """Writes params.yaml and a checkpoint of `config`'s (untrained) model."""
    task = task_factory.get_task(config.task)
    model = task.build_model()
    fn, (spec,) = task.tflite_signature(model)
    fn(tf.zeros(spec.shape, spec.dtype))
    path.mkdir(parents=True, exist_ok=True)
    train_lib.write_params(config, str(path))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(path), 1).save()
    return str(path)


def _digits_config(digits_dir, **overrides):
    return config_loader.load_experiment_config(
        "resnet_digits",
        params_override={
            "task.train_data.input_path": f"{digits_dir}/train-*",
            "task.validation_data.input_path": f"{digits_dir}/validation-*",
            **overrides,
        },
    )


def _main(argv):
    flag_values = flags.FlagValues()
    export.define_flags(flag_values)
    flag_values(["export", *argv])
    return export.main([], flag_values)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, digits_dir):
    return _run_dir(tmp_path_factory.mktemp("digits_run"), _digits_config(digits_dir))


def test_export_from_the_model_dir_alone(tmp_path, digits_run, capsys):
    export_dir = tmp_path / "export"
    code = _main(
        [
            f"--checkpoint_path={digits_run}",
            f"--export_dir={export_dir}",
            "--formats=saved_model",
            "--num_parity_examples=4",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    used = [line for line in out.splitlines() if line.startswith("Export config")]
    assert used and f"{digits_run}/params.yaml" in used[0], used
    exported = config_loader.load_yaml_file(str(export_dir / "params.yaml"))
    assert exported == config_loader.load_yaml_file(f"{digits_run}/params.yaml")
    report = json.loads((export_dir / "export_report.json").read_text())
    assert report["parity"]["passed"]


def test_flags_override_the_run_config(digits_run):
    config, source = run_config.load_run_config(
        digits_run,
        experiment="resnet_digits",
        params_override="task.validation_data.global_batch_size=7",
    )
    assert config.task.validation_data.global_batch_size == 7
    assert "--experiment=resnet_digits" in source and "params.yaml" in source


@pytest.mark.slow  # end to end, ~10 s on 2 cores
def test_image_folder_run_exports_with_parity(tmp_path, digits_dir):
    folder = str(tmp_path / "images")
    write_synthetic_image_folder(
        folder, 12, 40, num_classes=3, seed=0, image_format="png", size_jitter=0.2
    )
    config = _digits_config(
        digits_dir,
        **{
            "task.model.num_classes": 3,
            "task.validation_data.input_path": folder,
            "task.validation_data.input_format": "image_folder",
            "task.validation_data.center_crop_fraction": 0.875,
        },
    )
    run = _run_dir(tmp_path / "run", config)
    export_dir = tmp_path / "export"
    code = _main(
        [
            f"--checkpoint_path={run}",
            f"--export_dir={export_dir}",
            "--quantization=none",
            "--num_parity_examples=6",
        ]
    )
    assert code == 0
    parity = json.loads((export_dir / "parity.json").read_text())
    assert parity["passed"] and parity["num_examples"] == 6
    assert "model_float32.tflite" in parity["artifacts"]
    agreement = parity["signature_agreement"]["results"]
    assert set(agreement) >= {"image_tensor", "image_bytes", "tflite_signature"}
    assert all(result["passed"] for result in agreement.values()), agreement
    assert parity["preprocessing"]["center_crop_fraction"] == 0.875
    assert (export_dir / "labels.txt").read_text().split() == [
        "class_00",
        "class_01",
        "class_02",
    ]


def test_no_config_is_an_explicit_error(tmp_path, capsys):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), str(tmp_path), 1
    ).save()
    code = _main([f"--checkpoint_path={tmp_path}", f"--export_dir={tmp_path}/out"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no params.yaml" in err and "--experiment" in err


def test_no_validation_input_is_an_explicit_error(tmp_path, digits_dir, capsys):
    config = _digits_config(digits_dir, **{"task.validation_data.input_path": "''"})
    run = _run_dir(tmp_path / "run", config)
    code = _main([f"--checkpoint_path={run}", f"--export_dir={tmp_path}/out"])
    assert code == 1
    err = capsys.readouterr().err
    assert "task.validation_data.input_path" in err
    assert not (tmp_path / "out").exists()


def test_checkpoint_config_mismatch_is_one_line_naming_the_variable(
    tmp_path, digits_run, capsys, caplog
):
    with caplog.at_level(logging.WARNING):
        code = _main(
            [
                f"--checkpoint_path={digits_run}",
                f"--export_dir={tmp_path}/out",
                "--params_override=task.model.num_classes=7",
            ]
        )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "head/logits" in err[0] and "(7,)" in err[0] and "(10,)" in err[0]
    warnings = [r.getMessage() for r in caplog.records]
    assert not [w for w in warnings if "could not be found" in w], warnings[:3]


def test_signatures_and_tflite_agree_on_a_picture_of_another_size(tmp_path, digits_run):
    """Regression of issue 17: a 40 x 56 picture through image_tensor and
    image_bytes, and (resized to the model's size first) through TFLite."""
    config, _ = run_config.load_run_config(
        digits_run, params_override="task.validation_data.center_crop_fraction=0.875"
    )
    task = task_factory.get_task(config.task)
    model = task.build_model()
    picture = np.random.default_rng(0).integers(0, 256, (1, 40, 56, 3), np.uint8)
    signatures = task.serving_signatures(model)
    by_tensor = signatures["image_tensor"][0](tf.constant(picture))
    by_bytes = signatures["image_bytes"][0](tf.io.encode_png(picture[0])[None])
    np.testing.assert_allclose(
        by_tensor["probabilities"], by_bytes["probabilities"], atol=1e-5
    )
    square = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), np.uint8)
    tflite_fn, _ = task.tflite_signature(model)
    np.testing.assert_allclose(
        tflite_fn(tf.constant(square))["probabilities"],
        signatures["image_tensor"][0](tf.constant(square))["probabilities"],
        atol=1e-6,
    )


def test_the_recorded_experiment_is_used(tmp_path, digits_dir):
    config = _digits_config(digits_dir)
    train_lib.write_params(config, str(tmp_path), experiment="resnet_digits")
    assert (
        (tmp_path / "params.yaml")
        .read_text()
        .startswith("# experiment: resnet_digits\n")
    )
    loaded, source = run_config.load_run_config(str(tmp_path))
    assert "experiment resnet_digits (recorded in params.yaml)" in source
    assert loaded.as_dict() == config.as_dict()
    # Without the line (params.yaml written by other code): matched by task keys.
    train_lib.write_params(config, str(tmp_path))
    _, source = run_config.load_run_config(str(tmp_path))
    assert "found from params.yaml's task keys" in source
