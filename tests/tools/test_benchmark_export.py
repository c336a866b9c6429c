"""tools/benchmark_export.py: batch-1 latency of each artifact of an export."""

import importlib.util
import pathlib

import numpy as np
import pytest
import tensorflow as tf

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "benchmark_export_tool", ROOT / "tools" / "benchmark_export.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Model(tf.Module):
    """Doubles uint8 images; a string signature the tool must pass over."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="b")])
    def strings(self, b):
        return {"n": tf.strings.length(b)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def images(self, images):
        return {"y": 2.0 * tf.cast(images, tf.float32)}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = _Model()
    tf.saved_model.save(
        model,
        str(root / "saved_model"),
        signatures={"a_strings": model.strings, "images": model.images},
    )
    fixed = tf.function(
        lambda images: model.images(images),
        input_signature=[tf.TensorSpec([1, 6, 5, 3], tf.uint8, name="images")],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fixed.get_concrete_function()], model
    )
    (root / "model_float32.tflite").write_bytes(converter.convert())
    return str(root)


def test_every_artifact_is_timed_at_the_tflite_shape(tool, export_dir, capsys):
    assert (
        tool.main(["benchmark_export", f"--export_dir={export_dir}", "--runs=3"]) == 0
    )
    out = capsys.readouterr().out
    assert "model_float32.tflite" in out and "saved_model" in out
    results = tool.benchmark(export_dir, runs=3, warmup=1, threads=1)
    saved = results["saved_model"]
    assert saved["signature"] == "images"  # the numeric one
    assert saved["input_shapes"] == {"images": [1, 6, 5, 3]}
    assert results["model_float32.tflite"]["input_shape"] == [1, 6, 5, 3]
    for r in results.values():
        assert 0 < r["median_ms"] <= r["p90_ms"] and r["runs"] == 3


def test_random_inputs_fit_their_type(tool):
    rng = np.random.default_rng(0)
    pixels = tool.random_input((2, 3), np.uint8, rng)
    ids = tool.random_input((4,), np.int32, rng)
    assert pixels.dtype == np.uint8 and ids.dtype == np.int32
    assert ids.min() >= 0 and ids.max() < 8
    assert tool.random_input((3,), np.float32, rng).dtype == np.float32


def test_a_directory_without_a_saved_model_is_refused(tool, tmp_path, capsys):
    assert tool.main(["benchmark_export", f"--export_dir={tmp_path}"]) == 1
    assert "no saved_model/" in capsys.readouterr().err
