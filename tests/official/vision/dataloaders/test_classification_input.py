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
from official.vision.dataloaders import classification_preprocessing as cp
from official.vision.dataloaders.classification_parser import Parser
from official.vision.dataloaders.image_normalization import (
    MEAN_RGB,
    STDDEV_RGB,
    normalize_image,
)

# Normalized values of pixel 0 and 255 per channel.
LOW = min(-m / s for m, s in zip(MEAN_RGB, STDDEV_RGB))
HIGH = max((255 - m) / s for m, s in zip(MEAN_RGB, STDDEV_RGB))


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
    parser = Parser(
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
    train = Parser((16, 16), 10, True, aug_random_crop=False, aug_rand_hflip=False)
    evaluate = Parser((16, 16), 10, False)
    np.testing.assert_array_equal(
        train(decoded)[0].numpy(), evaluate(decoded)[0].numpy()
    )


def test_random_crop_falls_back_to_center_crop():
    # A crop of the whole image is never a random crop: the eval crop is used.
    decoded = {"image": tf.constant(_image(30, 30)), "label": tf.constant(0)}
    train = Parser((16, 16), 10, True, crop_area_range=(1.0, 1.0), aug_rand_hflip=False)
    evaluate = Parser((16, 16), 10, False)
    np.testing.assert_array_equal(
        train(decoded)[0].numpy(), evaluate(decoded)[0].numpy()
    )


def test_random_crop_varies():
    parser = Parser((16, 16), 10, True, aug_rand_hflip=False)
    decoded = {"image": tf.constant(_image(40, 40)), "label": tf.constant(0)}
    outputs = [parser(decoded)[0].numpy() for _ in range(4)]
    assert any(not np.array_equal(outputs[0], o) for o in outputs[1:])


def test_label_out_of_range_fails():
    parser = Parser((8, 8), 10, False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes"):
        parser({"image": tf.constant(_image(8, 8)), "label": tf.constant(10)})


def test_parser_argument_errors():
    with pytest.raises(ValueError, match="crop_area_range"):
        Parser((8, 8), 10, True, crop_area_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="center_crop_fraction"):
        Parser((8, 8), 10, False, center_crop_fraction=0.0)


@pytest.mark.parametrize("mode", ["eager", "map"])
@pytest.mark.parametrize("size", [(37, 51), (64, 48), (24, 24), (13, 200)])
def test_resize_for_serving_is_the_eval_crop_in_uint8(mode, size):
    image = _image(*size, seed=size[0])
    parser = Parser((24, 20), 10, is_training=False, center_crop_fraction=0.8)
    expected, _ = _run(
        parser, {"image": tf.constant(image), "label": tf.constant(1)}, mode
    )

    def resize(images):
        return cp.resize_for_serving(images, (24, 20), 0.8)

    resized = _run(resize, tf.constant(np.stack([image, image])), mode)
    assert resized.shape == (2, 24, 20, 3) and resized.dtype == tf.uint8
    # uint8 rounding: at most half a pixel level, divided by the smallest std.
    for served in normalize_image(resized).numpy():
        np.testing.assert_allclose(
            served, expected.numpy(), atol=0.5 / min(STDDEV_RGB) + 1e-5
        )


def test_eval_transform_converts_to_tflite_builtins():
    interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter")

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
    def serve(images):
        return normalize_image(cp.center_crop_and_resize(images, (16, 16), 0.875))

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


# ---- encoded images, augmentation, seeds --------------------------------------


@pytest.mark.parametrize("mode", ["eager", "map"])
@pytest.mark.parametrize("image_format", ["jpeg", "png"])
def test_training_decodes_the_crop_of_encoded_images(mode, image_format):
    image = _image(37, 51)
    encoded = (
        tf.io.encode_jpeg(image) if image_format == "jpeg" else tf.io.encode_png(image)
    )
    parser = Parser((16, 16), 10, is_training=True)

    def parse(inputs):
        return parser({"encoded": inputs[0], "label": tf.constant(1)}, seed=inputs[1])[
            0
        ]

    seeds = [[5, 5], [5, 5], [6, 5]]
    if mode == "eager":
        out = [parse((encoded, tf.constant(s))).numpy() for s in seeds]
    else:
        pairs = tf.data.Dataset.from_tensor_slices(([encoded] * 3, tf.constant(seeds)))
        out = [x.numpy() for x in pairs.map(lambda e, s: parse((e, s)))]
    assert out[0].shape == (16, 16, 3) and out[0].dtype == np.float32
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])
    # Decoding only the window equals decoding the image, then cropping.
    decoded = tf.io.decode_image(encoded, channels=3)
    from_pixels = parser({"image": decoded, "label": 1}, seed=tf.constant(seeds[0]))[0]
    np.testing.assert_allclose(out[0], from_pixels.numpy(), atol=1e-4)


@pytest.mark.parametrize("mode", ["eager", "map"])
def test_parser_with_every_augmentation(mode):
    parser = Parser(
        (24, 24),
        10,
        is_training=True,
        aug_policy="randaugment",
        randaug_num_layers=2,
        randaug_magnitude=9,
        color_jitter=0.4,
        random_erasing_prob=1.0,
    )
    decoded = {"image": tf.constant(_image(40, 30)), "label": tf.constant(3)}
    image, label = _run(lambda d: parser(d, tf.constant([1, 2])), decoded, mode)
    assert image.shape == (24, 24, 3) and int(label) == 3
    assert np.isfinite(image.numpy()).all()
    again, _ = parser(decoded, tf.constant([1, 2]))
    np.testing.assert_allclose(image.numpy(), again.numpy(), atol=1e-5)


def test_parser_scale_jitter_pads_with_the_mean():
    parser = Parser(
        (20, 20),
        10,
        True,
        aug_random_crop=False,
        aug_rand_hflip=False,
        scale_jitter_range=(0.5, 0.5),
    )
    image, _ = parser({"image": tf.constant(_image(30, 40)), "label": 0}, [0, 0])
    # Resized to 8 x 10 (fits 10 x 10); the padding normalizes to 0.
    assert image.shape == (20, 20, 3)
    np.testing.assert_allclose(image.numpy()[8:], 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="aug_random_crop=False"):
        Parser((8, 8), 10, True, scale_jitter_range=(0.5, 1.0))
    with pytest.raises(ValueError, match="aug_policy"):
        Parser((8, 8), 10, True, aug_policy="v0")


def _model(num_classes=3):
    return ImageClassificationModelConfig(
        num_classes=num_classes, input_size=[16, 16, 3]
    )


def test_mixup_cutmix_give_soft_labels_and_seeded_runs_repeat(tmp_path):
    path = os.path.join(tmp_path, "data.tfrecord")
    write_synthetic_classification_tfrecords(
        path, num_examples=12, image_size=(20, 28), num_classes=3, seed=0
    )
    data = ClassificationDataConfig(
        input_path=path,
        global_batch_size=4,
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        color_jitter=0.3,
        seed=3,
    )
    data.validate("task.train_data")
    dataset = ci.build_classification_dataset(data, _model())
    (images, labels), (images2, labels2) = list(dataset.take(2))
    assert images.shape == (4, 16, 16, 3)
    assert labels.shape == (4, 3) and labels.dtype == tf.float32
    np.testing.assert_allclose(tf.reduce_sum(labels, -1), 1.0, atol=1e-6)
    again = list(ci.build_classification_dataset(data, _model()).take(2))
    np.testing.assert_array_equal(again[1][0].numpy(), images2.numpy())
    np.testing.assert_array_equal(again[1][1].numpy(), labels2.numpy())
    # Validation never mixes.
    eval_data = ClassificationDataConfig(
        input_path=path, global_batch_size=4, is_training=False, mixup_alpha=0.2
    )
    _, eval_labels = next(iter(ci.build_classification_dataset(eval_data, _model())))
    assert eval_labels.dtype == tf.int32 and eval_labels.shape == (4,)


def test_image_folder_source(tmp_path):
    from official.datasets.synthetic import write_synthetic_image_folder

    root = str(tmp_path / "folder")
    paths = write_synthetic_image_folder(root, 6, (20, 24), num_classes=3, seed=0)
    data = ClassificationDataConfig(
        input_path=root,
        input_format="image_folder",
        global_batch_size=6,
        is_training=False,
        drop_remainder=False,
    )
    images, labels = next(iter(ci.build_classification_dataset(data, _model())))
    expected = sorted(int(os.path.basename(os.path.dirname(p))[-2:]) for p in paths)
    assert images.shape == (6, 16, 16, 3)
    assert labels.numpy().tolist() == expected


def test_corrupt_image_is_named_or_skipped(tmp_path, caplog):
    path = os.path.join(tmp_path, "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(4):
            example = classification_example(_image(10, 12, seed=i), i % 3, "jpeg")
            if i == 1:
                feature = example.features.feature["image/encoded"].bytes_list
                feature.value[0] = feature.value[0][:40]  # Truncated JPEG.
            writer.write(example.SerializeToString())
    data = ClassificationDataConfig(
        input_path=path, global_batch_size=4, shuffle_buffer_size=1, seed=0
    )
    # The error comes when the guard closes the record's group (64 records).
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"record 1 of {path}"):
        list(ci.build_classification_dataset(data, _model()).take(24))
    data.ignore_errors = True
    with caplog.at_level("WARNING", logger="absl"):
        batches = list(ci.build_classification_dataset(data, _model()).take(24))
    labels = batches[0][1]
    assert labels.numpy().tolist() == [0, 2, 0, 0]  # Records 0, 2, 3, then 0.
    assert any(f"record 1 of {path}" in r.getMessage() for r in caplog.records)


def test_augmentation_config_is_validated():
    for kwargs, match in [
        ({"aug_policy": "autoaugment"}, "aug_policy must be one of"),
        ({"randaug_magnitude": 11.0}, "randaug_magnitude"),
        ({"color_jitter": 1.5}, "color_jitter"),
        ({"scale_jitter_range": [0.5, 2.0]}, "aug_random_crop=false"),
        ({"scale_jitter_range": [2.0]}, "scale_jitter_range must be"),
        ({"random_erasing_prob": 2.0}, "random_erasing_prob"),
        ({"mixup_alpha": -1.0}, "mixup_alpha"),
    ]:
        with pytest.raises(ValueError, match=match):
            ClassificationDataConfig(**kwargs).validate("task.train_data")
    ClassificationDataConfig(
        scale_jitter_range=[0.5, 2.0], aug_random_crop=False
    ).validate("task.train_data")
