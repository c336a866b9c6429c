"""The serving signatures feed the model what the eval input pipeline does.

Each task's signatures wrap a model that returns its input, so their `logits`
are the normalized images the model would see; they are compared with the
batches of `task.build_inputs(validation_data)` for the same encoded images,
both called eagerly and traced as the export traces them.
"""

import ast
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.datasets.shapes import segmentation_example
from official.datasets.synthetic import classification_example
from official.vision.configs.image_classification import ImageClassificationTaskConfig
from official.vision.configs.semantic_segmentation import SemanticSegmentationTaskConfig
from official.vision.tasks.image_classification import ImageClassificationTask
from official.vision.tasks.semantic_segmentation import SemanticSegmentationTask

SIZE = 16
OFFICIAL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "official")


def _images(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in sizes]


def _write(path, examples):
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return [example.SerializeToString() for example in examples]


def _png(images):
    return tf.constant([tf.io.encode_png(image).numpy() for image in images])


def _signature(task, model, name, traced):
    fn, input_signature = task.serving_signatures(model)[name]
    return tf.function(fn, input_signature=input_signature) if traced else fn


def _classification_task(tmp_path, images, center_crop_fraction):
    """The task at 16 x 16 and its eval batch of `images` (from a TFRecord)."""
    path = str(tmp_path / "validation.tfrecord")
    serialized = _write(path, [classification_example(image, 0) for image in images])
    config = ImageClassificationTaskConfig()
    config.model.num_classes = 3
    config.model.input_size = [SIZE, SIZE, 3]
    data = config.validation_data
    data.input_path = path
    data.global_batch_size = len(images)
    data.center_crop_fraction = center_crop_fraction
    task = ImageClassificationTask(config)
    evaluated, _ = next(iter(task.build_inputs(data)))
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    return task, model, evaluated.numpy(), serialized


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_classification_bytes_signatures_match_the_eval_pipeline(tmp_path, traced):
    images = _images([(37, 51), (24, 24), (13, 60)])
    task, model, evaluated, examples = _classification_task(tmp_path, images, 0.875)
    inputs = {"image_bytes": _png(images), "tf_example": tf.constant(examples)}
    for name, batch in inputs.items():
        served = _signature(task, model, name, traced)(batch)["logits"].numpy()
        np.testing.assert_allclose(
            served.reshape(evaluated.shape), evaluated, atol=1e-5, err_msg=name
        )


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_classification_image_tensor_matches_the_uncropped_eval_pipeline(
    tmp_path, traced
):
    """`image_tensor` resizes without cropping: the eval crop of fraction 1
    of a square image."""
    images = _images([(24, 24), (24, 24)], seed=1)
    task, model, evaluated, _ = _classification_task(tmp_path, images, 1.0)
    served = _signature(task, model, "image_tensor", traced)(np.stack(images))
    np.testing.assert_allclose(
        served["logits"].numpy().reshape(evaluated.shape), evaluated, atol=1e-5
    )


def _segmentation_task(tmp_path, images):
    """The task at 16 x 16 with logits exported, and its eval batch of `images`."""
    path = str(tmp_path / "validation.tfrecord")
    masks = [np.zeros(image.shape[:2], np.uint8) for image in images]
    serialized = _write(
        path, [segmentation_example(image, mask) for image, mask in zip(images, masks)]
    )
    config = SemanticSegmentationTaskConfig()
    config.model.num_classes = 3  # The identity model's 3 channels.
    config.model.input_size = [SIZE, SIZE, 3]
    config.export_logits = True
    data = config.validation_data
    data.input_path = path
    data.global_batch_size = len(images)
    task = SemanticSegmentationTask(config)
    evaluated, _ = next(iter(task.build_inputs(data)))
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, {"logits": keras.layers.Identity()(inputs)})
    return task, model, evaluated, serialized


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_segmentation_signatures_match_the_eval_pipeline(tmp_path, traced):
    """The logits are resized back to each image's size: the eval batch is
    compared after the same resize."""
    images = _images([(20, 30), (16, 16), (9, 40)], seed=2)
    task, model, evaluated, examples = _segmentation_task(tmp_path, images)
    expected = [
        tf.image.resize(one[tf.newaxis], image.shape[:2])[0].numpy()
        for one, image in zip(evaluated, images)
    ]
    inputs = {"image_bytes": _png(images), "tf_example": tf.constant(examples)}
    for name, batch in inputs.items():
        served = _signature(task, model, name, traced)(batch)["logits"].numpy()
        for one, want in zip(served, expected):
            height, width, _ = want.shape
            np.testing.assert_allclose(
                one[:height, :width], want, atol=1e-5, err_msg=name
            )

    same_size = [images[0], images[0][::-1]]
    task, model, evaluated, _ = _segmentation_task(tmp_path, same_size)
    served = _signature(task, model, "image_tensor", traced)(np.stack(same_size))
    expected = tf.image.resize(evaluated, same_size[0].shape[:2]).numpy()
    np.testing.assert_allclose(served["logits"].numpy(), expected, atol=1e-5)


def test_one_normalization_in_official():
    """Mean, standard deviation and the normalizing function are defined once."""
    definitions = []
    for directory, _, names in os.walk(OFFICIAL):
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                # Image normalizers (not text's or a loss's `*_normalizer`).
                if (
                    isinstance(node, ast.FunctionDef)
                    and "normaliz" in node.name
                    and ("image" in node.name or "pixel" in node.name)
                ):
                    definitions.append((os.path.relpath(path, OFFICIAL), node.name))
                for target in getattr(node, "targets", []):
                    if isinstance(target, ast.Name) and target.id in (
                        "MEAN_RGB",
                        "STDDEV_RGB",
                    ):
                        definitions.append((os.path.relpath(path, OFFICIAL), target.id))
    here = os.path.join("vision", "dataloaders", "image_normalization.py")
    assert sorted(definitions) == [
        (here, "MEAN_RGB"),
        (here, "STDDEV_RGB"),
        (here, "normalize_image"),
    ]
