"""Tests of `official.vision.dataloaders.classification_input`.

Data functions run both eagerly and inside `Dataset.map` (STYLE R16).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from official.datasets.synthetic import (
    classification_example,
    write_synthetic_classification_tfrecords,
)
from official.vision.configs.image_classification import (
    ClassificationDataConfig,
    ImageClassificationModelConfig,
)
from official.vision.dataloaders import classification_input as ci

# Normalized values of pixel 0 and 255 per channel.
LOW = min(-m / s for m, s in zip(ci.MEAN_RGB, ci.STDDEV_RGB))
HIGH = max((255 - m) / s for m, s in zip(ci.MEAN_RGB, ci.STDDEV_RGB))


def _run(fn, inputs, mode: str):
    """`fn(inputs)` eagerly, or as the single element of a mapped dataset."""
    if mode == "eager":
        return fn(inputs)
    dataset = tf.data.Dataset.from_tensors(inputs).map(fn)
    return next(iter(dataset))


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


@pytest.mark.parametrize("mode", ["eager", "map"])
def test_decode_png_is_lossless(mode):
    image = _image(7, 9)
    record = classification_example(image, 4, "png").SerializeToString()
    decoded = _run(ci.decode_example, tf.constant(record), mode)
    assert decoded["image"].dtype == tf.uint8
    np.testing.assert_array_equal(decoded["image"].numpy(), image)
    assert decoded["label"].dtype == tf.int32 and int(decoded["label"]) == 4


@pytest.mark.parametrize("mode", ["eager", "map"])
def test_decode_jpeg(mode):
    image = np.full((12, 10, 3), 120, np.uint8)
    record = classification_example(image, 2, "jpeg").SerializeToString()
    decoded = _run(ci.decode_example, tf.constant(record), mode)
    assert decoded["image"].shape == (12, 10, 3)
    assert decoded["image"].dtype == tf.uint8
    assert np.abs(decoded["image"].numpy().astype(int) - 120).max() <= 2
    assert int(decoded["label"]) == 2


def test_decode_grayscale_png_gives_rgb():
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5, 1)
    example = classification_example(np.repeat(gray, 3, -1), 1, "png")
    example.features.feature["image/encoded"].bytes_list.value[0] = tf.io.encode_png(
        gray
    ).numpy()
    decoded = ci.decode_example(tf.constant(example.SerializeToString()))
    np.testing.assert_array_equal(decoded["image"].numpy(), np.repeat(gray, 3, -1))


@pytest.mark.parametrize("mode", ["eager", "map"])
def test_decode_tfds_grayscale(mode):
    features = {
        "image": tf.zeros((6, 5, 1), tf.uint8),
        "label": tf.constant(3, tf.int64),
    }
    decoded = _run(ci.decode_tfds_example, features, mode)
    assert decoded["image"].shape == (6, 5, 3)
    assert decoded["label"].dtype == tf.int32


@pytest.mark.parametrize("mode", ["eager", "map"])
@pytest.mark.parametrize("is_training", [True, False])
def test_parser_shapes_dtypes_and_range(mode, is_training):
    parser = ci.Parser(
        output_size=(24, 20), num_classes=10, is_training=is_training, seed=3
    )
    decoded = {"image": tf.constant(_image(37, 51)), "label": tf.constant(9, tf.int64)}
    image, label = _run(parser, decoded, mode)
    assert image.shape == (24, 20, 3) and image.dtype == tf.float32
    assert label.shape == () and label.dtype == tf.int32 and int(label) == 9
    values = image.numpy()
    assert LOW - 1e-4 <= values.min() and values.max() <= HIGH + 1e-4
    assert values.std() > 0.1


def test_training_without_augmentation_is_the_eval_transform():
    decoded = {"image": tf.constant(_image(30, 41)), "label": tf.constant(0)}
    train = ci.Parser((16, 16), 10, True, aug_random_crop=False, aug_rand_hflip=False)
    evaluate = ci.Parser((16, 16), 10, False)
    np.testing.assert_array_equal(
        train(decoded)[0].numpy(), evaluate(decoded)[0].numpy()
    )


def test_random_crop_falls_back_to_center_crop():
    # A crop of the whole image is never a random crop: the eval crop is used.
    decoded = {"image": tf.constant(_image(30, 30)), "label": tf.constant(0)}
    train = ci.Parser(
        (16, 16), 10, True, crop_area_range=(1.0, 1.0), aug_rand_hflip=False
    )
    evaluate = ci.Parser((16, 16), 10, False)
    np.testing.assert_array_equal(
        train(decoded)[0].numpy(), evaluate(decoded)[0].numpy()
    )


def test_random_crop_varies():
    parser = ci.Parser((16, 16), 10, True, aug_rand_hflip=False)
    decoded = {"image": tf.constant(_image(40, 40)), "label": tf.constant(0)}
    outputs = [parser(decoded)[0].numpy() for _ in range(4)]
    assert any(not np.array_equal(outputs[0], o) for o in outputs[1:])


def test_label_out_of_range_fails():
    parser = ci.Parser((8, 8), 10, False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes"):
        parser({"image": tf.constant(_image(8, 8)), "label": tf.constant(10)})


def test_parser_argument_errors():
    with pytest.raises(ValueError, match="crop_area_range"):
        ci.Parser((8, 8), 10, True, crop_area_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="center_crop_fraction"):
        ci.Parser((8, 8), 10, False, center_crop_fraction=0.0)


@pytest.mark.parametrize("mode", ["eager", "map"])
@pytest.mark.parametrize("size", [(37, 51), (64, 48), (24, 24), (13, 200)])
def test_serving_preprocessing_matches_eval_parser(mode, size):
    image = _image(*size, seed=size[0])
    parser = ci.Parser((24, 20), 10, is_training=False, center_crop_fraction=0.8)
    expected, _ = _run(
        parser, {"image": tf.constant(image), "label": tf.constant(1)}, mode
    )

    def serve(images):
        return ci.preprocess_for_serving(images, (24, 20), 0.8)

    batch = tf.constant(np.stack([image, image]))
    served = _run(serve, batch, mode)
    assert served.shape == (2, 24, 20, 3) and served.dtype == tf.float32
    np.testing.assert_allclose(served[0].numpy(), expected.numpy(), atol=1e-4)
    np.testing.assert_allclose(served[1].numpy(), expected.numpy(), atol=1e-4)

    resized = ci.resize_for_serving(batch, (24, 20), 0.8)
    assert resized.shape == (2, 24, 20, 3) and resized.dtype == tf.uint8
    # uint8 rounding: at most half a pixel level, divided by the smallest std.
    np.testing.assert_allclose(
        ci.normalize_image(resized)[0].numpy(),
        expected.numpy(),
        atol=0.5 / min(ci.STDDEV_RGB) + 1e-5,
    )


def test_serving_functions_convert_to_tflite_builtins():
    interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
    def serve(images):
        return ci.preprocess_for_serving(images, (16, 16), 0.875)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = interpreter_lib.Interpreter(model_content=converter.convert())
    image = _image(30, 41)[None]
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(image.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, image)
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(output, serve(tf.constant(image)).numpy(), atol=1e-4)


@pytest.mark.parametrize("is_training", [True, False])
def test_build_classification_dataset(tmp_path, is_training):
    path = os.path.join(tmp_path, "data.tfrecord")
    labels = write_synthetic_classification_tfrecords(
        path,
        num_examples=10,
        image_size=(20, 28),
        num_classes=3,
        seed=0,
        image_format="png",
    )
    data = ClassificationDataConfig(
        input_path=path,
        global_batch_size=4,
        is_training=is_training,
        drop_remainder=is_training,
        seed=1,
    )
    model = ImageClassificationModelConfig(num_classes=3, input_size=[16, 16, 3])
    dataset = ci.build_classification_dataset(data, model)
    images, batch_labels = next(iter(dataset))
    assert images.shape == (4, 16, 16, 3) and images.dtype == tf.float32
    assert batch_labels.shape == (4,) and batch_labels.dtype == tf.int32
    if not is_training:
        all_labels = [int(v) for _, ys in dataset for v in ys.numpy()]
        assert all_labels == labels


def test_build_classification_dataset_needs_rgb(tmp_path):
    data = ClassificationDataConfig(input_path=str(tmp_path / "x"))
    model = ImageClassificationModelConfig(num_classes=3, input_size=[16, 16, 1])
    with pytest.raises(ValueError, match="3"):
        ci.build_classification_dataset(data, model)
