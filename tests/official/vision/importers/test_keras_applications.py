"""official/vision/importers: keras.applications weights into Garden models.

Every source model is built here by keras.applications with random weights
(nothing is downloaded), then given random biases and batch-norm parameters
and statistics, so that a swapped weight would show in the outputs.
"""

import h5py
import keras
import numpy as np
import pytest

from official.vision.backbones.efficientnet import EfficientNet
from official.vision.backbones.mobilenet import MobileNet
from official.vision.backbones.resnet import ResNet
from official.vision.importers.keras_applications import (
    WeightImportError,
    import_keras_application,
)
from official.vision.importers.source_models import compare_outputs
from official.vision.models.image_classifier import ImageClassifier

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


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


def images(size, low=-1.0, high=1.0, batch=2, seed=1):
    shape = (batch, size, size, 3)
    return np.random.default_rng(seed).uniform(low, high, shape).astype("float32")


def mobilenet_v2_pair(size=64, alpha=0.35, classes=10, include_top=True):
    source = keras.applications.MobileNetV2(
        input_shape=(size, size, 3),
        alpha=alpha,
        include_top=include_top,
        classes=classes,
        weights=None,
        classifier_activation=None,
    )
    randomize(source)
    backbone = MobileNet(
        "MobileNetV2",
        width_multiplier=alpha,
        input_shape=(size, size, 3),
        norm_momentum=0.999,
    )
    return source, ImageClassifier(backbone, num_classes=10)


def efficientnet_pair(variant="B0", size=64, classes=10):
    source = getattr(keras.applications, f"EfficientNet{variant}")(
        input_shape=(size, size, 3),
        classes=classes,
        weights=None,
        classifier_activation=None,
    )
    randomize(source)
    backbone = EfficientNet(variant.lower(), input_shape=(size, size, 3))
    return source, ImageClassifier(backbone, num_classes=classes)


def assert_complete(report, garden):
    assert not report.missing and not report.skipped_by_shape
    assert len(report.matched) == len(garden.weights)
    assert {g for g, _, _ in report.matched} == {v.path for v in garden.weights}


def test_mobilenet_v2_classifier_equal_outputs():
    source, garden = mobilenet_v2_pair()
    report = import_keras_application(source, garden)
    assert_complete(report, garden)
    assert report.unused == []
    x = images(64)
    gap = np.max(np.abs(np.asarray(source(x)) - np.asarray(garden(x))))
    assert gap <= TOLERANCE, gap
    assert compare_outputs("mobilenet_v2", source, garden, x)[0] <= TOLERANCE
    # Training-only differences are reported, not hidden.
    assert any("[-1, 1]" in note for note in report.notes)


def test_efficientnet_b0_classifier_equal_outputs():
    source, garden = efficientnet_pair()
    report = import_keras_application(source, garden, architecture="efficientnet")
    assert_complete(report, garden)
    # Only the keras model's built-in input normalization is left over.
    assert all(s.startswith("normalization") for s, _ in report.unused)
    pixels = images(64, 0, 255)
    # weights=None: the built-in normalization is x / 255 (mean 0, variance 1).
    gap = np.max(np.abs(np.asarray(source(pixels)) - np.asarray(garden(pixels / 255))))
    assert gap <= TOLERANCE, gap
    gap, scale, compared = compare_outputs("efficientnet", source, garden, pixels)
    assert compared == "logits" and gap <= TOLERANCE and scale > 0.1


@pytest.mark.parametrize("legacy", [False, True], ids=["weights.h5", "legacy.h5"])
def test_weights_files(tmp_path, legacy):
    source, _ = mobilenet_v2_pair(size=32, include_top=False)
    if legacy:
        from keras.src.legacy.saving import legacy_h5_format

        path = str(tmp_path / "mobilenet_v2.h5")
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, source)
    else:
        path = str(tmp_path / "mobilenet_v2.weights.h5")
        source.save_weights(path)
    backbone = MobileNet("MobileNetV2", width_multiplier=0.35, input_shape=(32, 32, 3))
    report = import_keras_application(path, backbone)
    assert report.source == path
    assert_complete(report, backbone)
    x = images(32)
    reference = np.asarray(source(x))
    assert np.max(np.abs(reference - np.asarray(backbone(x)["5"]))) <= TOLERANCE


def test_other_classes_keep_the_head_and_report_it():
    source, garden = mobilenet_v2_pair(size=32, classes=7)
    head = [np.asarray(v) for v in garden.head.weights]
    report = import_keras_application(source, garden)
    assert [g.split("/")[-1] for g, _, _, _ in report.skipped_by_shape] == [
        "kernel",
        "bias",
    ]
    assert report.skipped_by_shape[0][2:] == ((1280, 10), (1280, 7))
    assert all(np.array_equal(a, b) for a, b in zip(head, garden.head.weights))
    assert any("init_checkpoint_modules=backbone" in n for n in report.notes)
    # Without a classifier in the source, the head is missing, not an error.
    source, garden = mobilenet_v2_pair(size=32, include_top=False)
    report = import_keras_application(source, garden)
    assert len(report.missing) == 2 and "no layer 'predictions'" in report.missing[0][1]
    assert "2 missing" in report.summary()


def test_refuses_a_backbone_that_does_not_fit_and_assigns_nothing():
    source, _ = mobilenet_v2_pair(size=32, include_top=False)
    backbone = MobileNet("MobileNetV2", width_multiplier=0.5, input_shape=(32, 32, 3))
    before = [np.asarray(v) for v in backbone.weights]
    with pytest.raises(WeightImportError, match="width_multiplier") as info:
        import_keras_application(source, backbone)
    assert info.value.report.skipped_by_shape
    assert all(np.array_equal(a, b) for a, b in zip(before, backbone.weights))


def test_refuses_another_efficientnet_variant():
    source = keras.applications.EfficientNetB1(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    backbone = EfficientNet("b0", input_shape=(32, 32, 3))
    with pytest.raises(WeightImportError, match="model_id") as info:
        import_keras_application(source, backbone)
    unused = [s for s, _ in info.value.report.unused]
    assert "block2c_expand_conv/kernel" in unused


def test_refuses_resnet50_with_the_reason():
    source = keras.applications.ResNet50(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    backbone = ResNet(50, input_shape=(32, 32, 3))
    with pytest.raises(WeightImportError, match="ResNet v1") as info:
        import_keras_application(source, backbone)
    assert "strides on the 3x3" in str(info.value)
    mobile, _ = mobilenet_v2_pair(size=32, include_top=False)
    with pytest.raises(WeightImportError, match="ResNet v1"):
        import_keras_application(mobile, backbone)


def test_refuses_settings_that_change_outputs():
    source, _ = mobilenet_v2_pair(size=32, include_top=False)
    wrong_epsilon = MobileNet("MobileNetV2", 0.35, (32, 32, 3), norm_epsilon=1e-5)
    with pytest.raises(WeightImportError, match="norm_epsilon=0.001"):
        import_keras_application(source, wrong_epsilon)
    v3 = MobileNet("MobileNetV3Small", 0.35, (32, 32, 3))
    with pytest.raises(WeightImportError, match="model_id='MobileNetV2'"):
        import_keras_application(source, v3)
    with pytest.raises(WeightImportError, match="holds mobilenet_v2 weights"):
        import_keras_application(source, v3, architecture="efficientnet")


def test_unreadable_sources(tmp_path):
    backbone = MobileNet("MobileNetV2", 0.35, (32, 32, 3))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_keras_application(str(tmp_path / "nope.weights.h5"), backbone)
    text = tmp_path / "notes.weights.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 weights file"):
        import_keras_application(str(text), backbone)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    with pytest.raises(WeightImportError, match="Not keras.applications weights"):
        import_keras_application(other, backbone)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["MobileNetV2-224", "EfficientNetB0-224", "EfficientNetB1-240"]
)
def test_full_size_classifiers_equal_outputs(name):
    arch, size = name.split("-")
    size = int(size)
    if arch == "MobileNetV2":
        source, garden = mobilenet_v2_pair(size=size, alpha=1.0, classes=10)
        x = images(size)
    else:
        source, garden = efficientnet_pair(arch[-2:], size=size, classes=1000)
        x = images(size, 0, 255)
    report = import_keras_application(source, garden)
    assert_complete(report, garden)
    key = "mobilenet_v2" if arch == "MobileNetV2" else "efficientnet"
    gap, scale, compared = compare_outputs(key, source, garden, x)
    assert compared == "logits" and gap <= TOLERANCE, (gap, scale)


def test_keras3_file_of_another_width_is_refused(tmp_path):
    source, _ = mobilenet_v2_pair(size=32, include_top=False)
    path = str(tmp_path / "mobilenet_v2.weights.h5")
    source.save_weights(path)
    backbone = MobileNet("MobileNetV2", width_multiplier=0.5, input_shape=(32, 32, 3))
    with pytest.raises(WeightImportError, match="does not fit keras.applications'"):
        import_keras_application(path, backbone)
    with pytest.raises(WeightImportError, match="ResNet v1"):
        import_keras_application(path, ResNet(18, input_shape=(32, 32, 3)))
