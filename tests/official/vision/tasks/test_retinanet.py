"""RetinaNet task: losses, COCO metrics, replicas, export with detection parity."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official.core import task_factory
from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment
from official.datasets import detection_shapes
from serving import export, tflite_export


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("detection_shapes")
    detection_shapes.write_detection_shapes(
        str(out), num_train=32, num_validation=16, image_size=64
    )
    return str(out)


def tiny_overrides(shapes_dir, overrides=""):
    """The `--params_override` of `tiny_config`."""
    return ",".join(
        filter(
            None,
            [
                f"task.train_data.input_path={shapes_dir}/train-*",
                f"task.validation_data.input_path={shapes_dir}/validation-*",
                "task.model.decoder.num_filters=8",
                "task.model.head.num_filters=8,task.model.head.num_convs=1",
                "task.train_data.global_batch_size=8",
                "task.validation_data.global_batch_size=8",
                "trainer.train_steps=4,trainer.steps_per_loop=2",
                "trainer.checkpoint_interval=4,trainer.validation_interval=4",
                "trainer.optimizer_config.learning_rate.params.decay_steps=4",
                overrides,
            ],
        )
    )


def tiny_config(shapes_dir, overrides=""):
    """retinanet_shapes with 8-channel FPN and head: seconds per run."""
    return load_experiment_config(
        "retinanet_shapes", [], tiny_overrides(shapes_dir, overrides)
    )


def save_confident_checkpoint(config, model_dir, seed=0):
    """A checkpoint of `config`'s model with random, confident predictions.

    The class and box predictions get random kernels and zero biases: every
    image has many candidates scoring far above the prior (about 0.5, widely
    spread), so suppression has real work, and boxes stay near their anchors
    (a box clipped to nothing matches nothing).
    """
    model = task_factory.get_task(config.task).build_model()
    rng = np.random.default_rng(seed)
    for layer, scale in (
        (model.head.classifier, 0.3),
        (model.head.box_regressor, 0.03),
    ):
        kernel, bias = layer.get_weights()
        layer.set_weights(
            [rng.normal(0, scale, kernel.shape).astype(np.float32), np.zeros_like(bias)]
        )
    checkpoint = tf.train.Checkpoint(model=model)
    return tf.train.CheckpointManager(
        checkpoint, model_dir, 1, checkpoint_name="ckpt"
    ).save()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes_dir):
    """(config, model_dir, eval logs) after 4 training steps and an evaluation."""
    cfg = tiny_config(shapes_dir)
    model_dir = str(tmp_path_factory.mktemp("model"))
    logs = run_experiment(cfg, "train_and_eval", model_dir)
    return cfg, model_dir, logs


def test_train_and_eval_logs_coco_metrics(trained):
    _, model_dir, logs = trained
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "ARmax100"} <= set(logs)
    assert {"AP/circle", "AP/square", "AP/triangle"} <= set(logs)
    assert -1.0 <= logs["AP"] <= 1.0 and np.isfinite(logs["loss"])
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        assert json.load(f)["AP"] == pytest.approx(logs["AP"])


def test_eval_report_lists_classes_with_ground_truth(trained, shapes_dir):
    _, _, logs = trained
    task = task_factory.get_task(tiny_config(shapes_dir).task)
    lines = task.eval_report(logs).splitlines()
    assert lines[0].split() == ["class", "AP"]
    assert [line.split()[0] for line in lines[1:]] == [
        "circle",
        "square",
        "triangle",
        "mean",
    ]  # "background" (class 0) has no ground truth
    assert float(lines[-1].split()[1]) == pytest.approx(logs["AP"], abs=1e-4)


def test_two_replicas_evaluate_to_the_same_numbers(trained, shapes_dir):
    """Each replica's images are collected once: the same COCO numbers."""
    _, model_dir, logs = trained
    mirrored = tiny_config(shapes_dir, "runtime.distribution_strategy=mirrored")
    two_replicas = run_experiment(mirrored, "eval", model_dir)
    for key in ("AP", "AP50", "ARmax100", "AP/square", "loss"):
        np.testing.assert_allclose(two_replicas[key], logs[key], rtol=1e-5, err_msg=key)


def test_losses_are_finite_and_normalized(shapes_dir):
    task = task_factory.get_task(tiny_config(shapes_dir).task)
    model = task.build_model()
    images, labels = next(iter(task.build_inputs(task.config.train_data)))
    outputs = model(images, training=False)
    loss = float(task.build_losses(labels, outputs))
    assert np.isfinite(loss) and loss > 0
    assert task.build_metrics(training=True) == []


def test_parity_tolerance_of_unknown_kind_is_named(shapes_dir):
    task = task_factory.get_task(tiny_config(shapes_dir).task)
    with pytest.raises(KeyError, match="Did you mean 'int8'"):
        task.parity_tolerance("int9")


@pytest.mark.slow
def test_export_every_artifact_with_parity_and_no_flex_op(tmp_path, trained):
    """SavedModel signatures and every TFLite quantization return detections."""
    cfg, model_dir, _ = trained
    export_dir = str(tmp_path / "export")
    report = export.export_experiment(
        cfg, model_dir, export_dir, num_parity_examples=8, num_calibration_examples=8
    )
    parity = report["parity"]
    assert parity["passed"], parity
    for name in tflite_export.FILE_NAMES.values():
        path = os.path.join(export_dir, name)
        assert tflite_export.flex_ops(path) == [], name
        outputs = tflite_export.run(
            path, {"images": np.zeros((1, 64, 64, 3), np.uint8)}
        )
        assert outputs["detection_boxes"].shape == (1, 20, 4)
        assert outputs["num_detections"].dtype == np.int32
    with open(os.path.join(export_dir, "labels.txt")) as f:
        assert f.read().split() == list(detection_shapes.CLASS_NAMES)


@pytest.mark.slow
def test_retinanet_shapes_reaches_its_ap_and_exports(tmp_path):
    """The demo experiment as published, then every artifact with parity."""
    data = str(tmp_path / "shapes")
    detection_shapes.write_detection_shapes(data)
    cfg = load_experiment_config(
        "retinanet_shapes",
        [],
        f"task.train_data.input_path={data}/train-*,"
        f"task.validation_data.input_path={data}/validation-*",
    )
    model_dir = str(tmp_path / "model")
    logs = run_experiment(cfg, "train_and_eval", model_dir)
    assert logs["AP"] >= 0.5, logs  # 0.61 measured, seeded.
    report = export.export_experiment(
        cfg, model_dir, str(tmp_path / "export"), num_parity_examples=64
    )
    assert report["parity"]["passed"], report["parity"]
    for result in report["parity"]["artifacts"].values():
        assert result["matched_fraction_iou50"] >= 0.9
