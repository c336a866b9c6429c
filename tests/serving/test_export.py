"""serving.export: SavedModel signatures, TFLite files, parity, atomic export.

Most tests export a tiny fake classification task (8x8 images, 3 classes,
hand-set weights so that the class is the brightest channel); one runs the
real `resnet_digits` experiment when it is registered.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from official.core.base_task import Task
from official.core.experiment_config import TaskConfig
from official.vision.tasks import classification_parity
from official.vision.tasks.classification_parity import (
    CLASSIFICATION_TOLERANCES,
    ClassificationTolerance,
)
from official.vision.tasks.image_signatures import image_signatures
from serving import export, tflite_export
from serving.parity import ParityError

SIZE = 8
CLASSES = ("red", "green", "blue")
OUTPUTS = {"logits": tf.float32, "probabilities": tf.float32, "classes": tf.int32}
SIGNATURES = ("image_tensor", "image_bytes", "tf_example", "serving_default")


def make_examples(n, seed=0):
    """uint8 [n, 8, 8, 3] noise with channel `label` brightened."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    images = rng.integers(0, 100, (n, SIZE, SIZE, 3))
    images[np.arange(n), :, :, labels] += 120
    return images.astype(np.uint8), labels.astype(np.int64)


def set_trained_weights(model):
    """Conv keeps the three channels; the head scores each by its mean."""
    rng = np.random.default_rng(1)
    kernel = rng.normal(0, 0.02, (3, 3, 3, 8)).astype(np.float32)
    kernel[1, 1, :3, :3] += np.eye(3, dtype=np.float32)
    dense = rng.normal(0, 0.1, (8, 3)).astype(np.float32)
    dense[:3, :3] += 10 * np.eye(3, dtype=np.float32)
    model.get_layer("conv").set_weights([kernel, np.zeros(8, np.float32)])
    model.get_layer("head").set_weights([dense, np.zeros(3, np.float32)])


class FakeTask(Task):
    """A tiny image classifier with the real task's export hooks."""

    def __init__(self):
        super().__init__(TaskConfig())

    def build_model(self):
        inputs = keras.Input((SIZE, SIZE, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(
            inputs
        )
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))

    def build_inputs(self, data, input_context=None):
        raise NotImplementedError

    def build_losses(self, labels, outputs, aux_losses=None):
        raise NotImplementedError

    def logits(self, model, images):
        return tf.cast(model(images, training=False), tf.float32)

    def _outputs(self, model, images):
        logits = self.logits(model, tf.cast(images, tf.float32) / 255.0)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "classes": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }

    def serving_signatures(self, model):
        def image_tensor(images):
            return self._outputs(
                model, tf.image.resize(tf.cast(images, tf.float32), (SIZE, SIZE))
            )

        def image_bytes(image_bytes):
            def decode(data):
                image = tf.cast(tf.io.decode_png(data, channels=3), tf.float32)
                return tf.image.resize(image, (SIZE, SIZE))

            return self._outputs(
                model, tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32)
            )

        return image_signatures(image_tensor, image_bytes)

    def tflite_signature(self, model):
        spec = tf.TensorSpec([1, SIZE, SIZE, 3], tf.uint8, name="images")
        return (lambda images: self._outputs(model, images)), [spec]

    def serving_examples(self, num_examples):
        return make_examples(num_examples)

    def class_names(self):
        return list(CLASSES)

    def parity_measures(self, reference, candidate, labels):
        return classification_parity.classification_measures(
            reference, candidate, labels
        )

    def parity_reference_measures(self, reference, labels):
        return classification_parity.classification_reference_measures(
            reference, labels
        )

    def parity_tolerance(self, kind):
        return classification_parity.classification_tolerance(kind)


class DriftingTask(FakeTask):
    """Its traced (exported) graph scales the logits: the export is wrong."""

    def logits(self, model, images):
        logits = super().logits(model, images)
        return logits if tf.executing_eagerly() else 1.5 * logits


class FlexTask(FakeTask):
    """Its TFLite function needs a Select TF (Flex) op: Cumprod."""

    def tflite_signature(self, model):
        fn, spec = super().tflite_signature(model)

        def with_cumprod(images):
            outputs = fn(images)
            return {**outputs, "logits": tf.math.cumprod(outputs["logits"], axis=-1)}

        return with_cumprod, spec


# ---- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_model():
    model = FakeTask().build_model()
    set_trained_weights(model)
    return model


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory, trained_model):
    path = str(tmp_path_factory.mktemp("model_dir"))
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=trained_model), path, 1
    )
    manager.save()
    return path


@pytest.fixture(scope="module")
def full_export(tmp_path_factory, checkpoint_dir):
    export_dir = str(tmp_path_factory.mktemp("exports") / "fake")
    report = export.export_task(
        FakeTask(),
        checkpoint_dir,
        export_dir,
        num_parity_examples=12,
        num_calibration_examples=12,
    )
    return export_dir, report


def assert_nothing_left(parent, keep=()):
    assert sorted(os.listdir(parent)) == sorted(keep), os.listdir(parent)


# ---- a successful export -----------------------------------------------------------


def test_layout_and_report(full_export):
    export_dir, report = full_export
    names = {a["path"]: a["bytes"] for a in report["artifacts"]}
    assert set(names) == {
        "saved_model",
        "model_float32.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
        "parity.json",
        "labels.txt",
    }
    assert all(size > 0 for size in names.values())
    assert sorted(os.listdir(export_dir)) == sorted([*names, "export_report.json"])
    assert_nothing_left(os.path.dirname(export_dir), keep=["fake"])
    with open(os.path.join(export_dir, "export_report.json")) as f:
        assert json.load(f)["artifacts"] == report["artifacts"]
    with open(os.path.join(export_dir, "labels.txt")) as f:
        assert f.read().split() == list(CLASSES)
    assert report["checkpoint"].endswith("ckpt-1")
    assert report["signatures"] == list(SIGNATURES)
    assert "model_int8.tflite" in export.format_summary(report)


def test_saved_model_signatures_are_named_and_typed(full_export):
    loaded = tf.saved_model.load(os.path.join(full_export[0], "saved_model"))
    assert sorted(loaded.signatures) == sorted(SIGNATURES)
    expected_inputs = {
        "image_tensor": ("images", tf.uint8, [None, None, None, 3]),
        "serving_default": ("images", tf.uint8, [None, None, None, 3]),
        "image_bytes": ("image_bytes", tf.string, [None]),
        "tf_example": ("examples", tf.string, [None]),
    }
    for name, (input_name, dtype, shape) in expected_inputs.items():
        signature = loaded.signatures[name]
        args, kwargs = signature.structured_input_signature
        assert args == () and list(kwargs) == [input_name]
        assert kwargs[input_name].dtype == dtype
        assert kwargs[input_name].shape.as_list() == shape
        outputs = signature.structured_outputs
        assert {k: v.dtype for k, v in outputs.items()} == OUTPUTS


def test_saved_model_reloads_with_the_checkpointed_weights(full_export, trained_model):
    images, labels = make_examples(9, seed=5)
    expected = tf.nn.softmax(trained_model(images.astype(np.float32) / 255.0)).numpy()
    loaded = tf.saved_model.load(os.path.join(full_export[0], "saved_model"))
    for name in ("serving_default", "image_tensor"):
        out = loaded.signatures[name](images=tf.constant(images))
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
        np.testing.assert_array_equal(out["classes"].numpy(), labels)
    png = tf.constant([tf.io.encode_png(image).numpy() for image in images])
    out = loaded.signatures["image_bytes"](image_bytes=png)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("quantization", tflite_export.QUANTIZATIONS)
def test_tflite_file_runs_with_litert(full_export, quantization):
    from ai_edge_litert.interpreter import Interpreter

    path = os.path.join(full_export[0], tflite_export.FILE_NAMES[quantization])
    interpreter = Interpreter(model_path=path, num_threads=2)
    runner = interpreter.get_signature_runner("serving_default")
    assert runner.get_input_details()["images"]["dtype"] == np.uint8
    images, labels = make_examples(6, seed=7)
    classes = []
    for image in images:
        out = runner(images=image[None])
        assert set(out) == set(OUTPUTS)
        classes.append(int(out["classes"][0]))
    np.testing.assert_array_equal(classes, labels)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops), ops


def test_parity_json(full_export):
    with open(os.path.join(full_export[0], "parity.json")) as f:
        report = json.load(f)
    assert report["passed"] and report["num_examples"] == 12
    assert report["calibration"] == {
        "num_examples": 12,
        "disjoint_from_parity_examples": True,
    }
    assert report["reference"] == {"name": "keras", "top1_accuracy": 1.0}
    kinds = {
        "saved_model:image_tensor": "saved_model",
        "saved_model:image_bytes": "saved_model",
        "saved_model:tf_example": "saved_model",
        "saved_model:serving_default": "saved_model",
        "model_float32.tflite": "none",
        "model_float16.tflite": "float16",
        "model_dynamic.tflite": "dynamic",
        "model_int8.tflite": "int8",
    }
    assert set(report["artifacts"]) == set(kinds)
    for name, kind in kinds.items():
        result = report["artifacts"][name]
        assert result["passed"] and result["failures"] == []
        assert result["tolerance"] == vars(CLASSIFICATION_TOLERANCES[kind])
        assert result["top1_accuracy"] == 1.0 and result["top1_agreement"] == 1.0
        assert "max_rel_diff_logits" in result
    assert (
        report["artifacts"]["model_float32.tflite"]["max_abs_diff_probabilities"]
        <= 1e-4
    )
    assert report["artifacts"]["model_int8.tflite"]["kind"] == "tflite_int8"


# ---- failures leave nothing behind --------------------------------------------------


def test_failing_parity_leaves_no_export_dir(tmp_path, checkpoint_dir):
    export_dir = str(tmp_path / "drift")
    with pytest.raises(ParityError, match=r"saved_model:image_tensor: max abs diff"):
        export.export_task(
            DriftingTask(),
            checkpoint_dir,
            export_dir,
            input_types=["image_tensor"],
            formats=["saved_model"],
            num_parity_examples=6,
        )
    assert_nothing_left(tmp_path)


def test_failing_parity_keeps_the_previous_export(
    tmp_path, checkpoint_dir, full_export, monkeypatch
):
    export_dir = str(tmp_path / "fake")
    shutil.copytree(full_export[0], export_dir)
    before = sorted(os.listdir(export_dir))
    impossible = ClassificationTolerance(
        max_abs_diff_probabilities=0.0, min_top1_agreement=1.01
    )
    monkeypatch.setitem(CLASSIFICATION_TOLERANCES, "none", impossible)
    with pytest.raises(ParityError, match=r"model_float32.tflite: .*top-1 agreement"):
        export.export_task(
            FakeTask(),
            checkpoint_dir,
            export_dir,
            formats=["tflite"],
            quantizations=["none"],
            num_parity_examples=4,
        )
    assert sorted(os.listdir(export_dir)) == before
    assert_nothing_left(tmp_path, keep=["fake"])


def test_missing_checkpoint_is_reported_and_leaves_nothing(tmp_path):
    empty = tmp_path / "empty_model_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="contains no checkpoint"):
        export.export_task(FakeTask(), str(empty), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match=r"ckpt-7' does not exist"):
        export.export_task(FakeTask(), str(empty / "ckpt-7"), str(tmp_path / "out"))
    assert_nothing_left(tmp_path, keep=["empty_model_dir"])


def test_flex_ops_fail_the_export_and_leave_nothing(tmp_path, checkpoint_dir):
    with pytest.raises(
        tflite_export.TFLiteExportError, match=r"(?s)Only TFLite builtin ops.*Cumprod"
    ):
        export.export_task(
            FlexTask(),
            checkpoint_dir,
            str(tmp_path / "flex"),
            quantizations=["none"],
            num_parity_examples=2,
        )
    assert_nothing_left(tmp_path)


def test_refuses_to_replace_a_directory_that_is_not_an_export(tmp_path, checkpoint_dir):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not an export"):
        export.export_task(FakeTask(), checkpoint_dir, str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_bad_choices_name_the_valid_ones(tmp_path, checkpoint_dir):
    with pytest.raises(
        ValueError, match=r"Unknown quantization 'int4'. Did you mean 'int8'"
    ):
        export.export_task(
            FakeTask(), checkpoint_dir, str(tmp_path / "x"), quantizations=["int4"]
        )
    with pytest.raises(
        ValueError, match=r"Unknown input type 'image_tensors'.*Valid: image_tensor"
    ):
        export.export_task(
            FakeTask(),
            checkpoint_dir,
            str(tmp_path / "x"),
            input_types=["image_tensors"],
        )
    assert_nothing_left(tmp_path)


# ---- the binary ----------------------------------------------------------------------


def _run_main(monkeypatch, argv):
    config = types.SimpleNamespace(task=None, to_yaml=lambda: "fake: true\n")
    monkeypatch.setattr(export, "load_experiment_config", lambda *args: config)
    monkeypatch.setattr(export.task_factory, "get_task", lambda task_config: FakeTask())
    flag_values = flags.FlagValues()
    export.define_flags(flag_values)
    flag_values(["export", "--experiment=fake", *argv])
    return export.main([], flag_values)


def test_main_exports_and_prints_the_summary(
    tmp_path, checkpoint_dir, monkeypatch, capsys
):
    export_dir = tmp_path / "cli"
    code = _run_main(
        monkeypatch,
        [
            f"--checkpoint_path={checkpoint_dir}/ckpt-1",
            f"--export_dir={export_dir}",
            "--formats=saved_model",
            "--input_type=image_bytes,image_tensor",
            "--num_parity_examples=3",
        ],
    )
    assert code == 0
    assert "saved_model" in capsys.readouterr().out
    assert (export_dir / "params.yaml").read_text() == "fake: true\n"
    loaded = tf.saved_model.load(str(export_dir / "saved_model"))
    _, kwargs = loaded.signatures["serving_default"].structured_input_signature
    assert list(kwargs) == ["image_bytes"]


def test_main_exits_non_zero_on_a_missing_checkpoint(tmp_path, monkeypatch, capsys):
    code = _run_main(
        monkeypatch,
        [f"--checkpoint_path={tmp_path}/nothing", f"--export_dir={tmp_path}/out"],
    )
    assert code == 1
    assert "FileNotFoundError" in capsys.readouterr().err
    assert_nothing_left(tmp_path)


# ---- loading without `official` ----------------------------------------------------------

_LOAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    saved_model, inputs, output = sys.argv[1:]
    loaded = tf.saved_model.load(saved_model)
    out = loaded.signatures["serving_default"](images=tf.constant(np.load(inputs)))
    np.savez(output, **{k: v.numpy() for k, v in out.items()})
    leaked = sorted(m for m in sys.modules if m == "official" or m.startswith("official."))
    assert not leaked, leaked
""")


def outputs_in_fresh_process(tmp_path, saved_model_dir, images):
    """Runs serving_default in a Python that never imports `official`."""
    np.save(tmp_path / "inputs.npy", images)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _LOAD_SCRIPT,
            saved_model_dir,
            str(tmp_path / "inputs.npy"),
            str(tmp_path / "outputs.npz"),
        ],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(tmp_path / "outputs.npz"))


def test_saved_model_loads_in_a_process_without_official(tmp_path, full_export):
    saved_model_dir = os.path.join(full_export[0], "saved_model")
    images, _ = make_examples(5, seed=3)
    got = outputs_in_fresh_process(tmp_path, saved_model_dir, images)
    want = tf.saved_model.load(saved_model_dir).signatures["serving_default"](
        images=tf.constant(images)
    )
    assert set(got) == set(OUTPUTS)
    for key in OUTPUTS:
        np.testing.assert_allclose(got[key], want[key].numpy(), atol=1e-6)


# ---- the real experiment -------------------------------------------------------------------


def _real_task_or_skip(digits_dir):
    try:
        from official.core import config_loader, task_factory

        config = config_loader.load_experiment_config(
            "resnet_digits",
            params_override={
                "task.train_data.input_path": f"{digits_dir}/train-*",
                "task.validation_data.input_path": f"{digits_dir}/validation-*",
            },
        )
        return config, task_factory.get_task(config.task)
    except (ImportError, KeyError) as e:
        pytest.skip(f"experiment resnet_digits or its task is not available yet: {e}")


def test_resnet_digits_export(tmp_path, digits_dir):
    config, task = _real_task_or_skip(digits_dir)
    model = task.build_model()
    fn, (spec,) = task.tflite_signature(model)
    fn(tf.zeros(spec.shape, spec.dtype))
    model_dir = str(tmp_path / "model_dir")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, 1).save()

    export_dir = str(tmp_path / "export")
    report = export.export_experiment(
        config, model_dir, export_dir, quantizations=["none"], num_parity_examples=8
    )
    assert report["parity"]["passed"], report["parity"]
    assert os.path.exists(os.path.join(export_dir, "params.yaml"))
    images, _ = task.serving_examples(4)
    got = outputs_in_fresh_process(
        tmp_path, os.path.join(export_dir, "saved_model"), images
    )
    want = fn(tf.constant(images))
    np.testing.assert_allclose(
        got["probabilities"], want["probabilities"].numpy(), atol=1e-4
    )


def test_unwritable_parent_fails_before_any_work(tmp_path, monkeypatch):
    from serving import export_dir

    # Root ignores directory permissions, so the check's answer is simulated.
    monkeypatch.setattr(export_dir.os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="Cannot write into"):
        export_dir.check_export_dir(str(tmp_path / "export"))


def test_too_little_free_space_is_reported(tmp_path, monkeypatch):
    import collections
    import shutil as shutil_module

    from serving.export_dir import check_free_space

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10, 10, 1000))
    with pytest.raises(OSError, match="Not enough free space"):
        check_free_space(str(tmp_path / "e"), model_bytes=10_000, num_tflite=1)
    check_free_space(str(tmp_path / "e"), model_bytes=10, num_tflite=1)
