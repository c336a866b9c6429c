"""Per-pixel cross-entropy with ignore label, class weights and top-k; SE loss."""

import numpy as np
import pytest

from official.vision.losses.segmentation_losses import (
    pixel_cross_entropy,
    present_classes,
    se_loss,
)

# One image of 2 x 2 pixels, 3 classes.
LABELS = np.array([[[0, 1], [2, 255]]])
LOGITS = np.log(
    np.array(
        [[[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], [[0.25, 0.25, 0.5], [0.9, 0.05, 0.05]]]],
        "float32",
    )
)
# -log p(true class) of the three valid pixels.
PIXEL_LOSSES = -np.log([0.7, 0.8, 0.5])


def test_ignored_pixels_do_not_count():
    loss = float(pixel_cross_entropy(LABELS, LOGITS, ignore_label=255))
    assert loss == pytest.approx(PIXEL_LOSSES.mean(), rel=1e-5)


def test_trailing_label_axis_is_accepted():
    loss = float(pixel_cross_entropy(LABELS[..., None], LOGITS, ignore_label=255))
    assert loss == pytest.approx(PIXEL_LOSSES.mean(), rel=1e-5)


def test_class_weights_weight_each_pixel_by_its_true_class():
    weights = [1.0, 2.0, 0.5]
    loss = float(pixel_cross_entropy(LABELS, LOGITS, class_weights=weights))
    w = np.array(weights)
    assert loss == pytest.approx(np.sum(w * PIXEL_LOSSES) / np.sum(w), rel=1e-5)


def test_top_k_keeps_the_hardest_pixels():
    # ceil(0.5 * 4 pixels) = 2 hardest: -log 0.5 and -log 0.7.
    loss = float(pixel_cross_entropy(LABELS, LOGITS, top_k_percent_pixels=0.5))
    assert loss == pytest.approx((-np.log(0.5) - np.log(0.7)) / 2, rel=1e-5)


def test_top_k_selecting_ignored_pixels_averages_the_valid_ones():
    # k = ceil(0.9 * 4) = 4 includes the ignored pixel, which adds nothing.
    loss = float(pixel_cross_entropy(LABELS, LOGITS, top_k_percent_pixels=0.9))
    assert loss == pytest.approx(PIXEL_LOSSES.mean(), rel=1e-5)


def test_top_k_compiles_with_xla():
    import tensorflow as tf

    fn = tf.function(
        lambda y, x: pixel_cross_entropy(y, x, top_k_percent_pixels=0.5),
        jit_compile=True,
    )
    loss = float(fn(tf.constant(LABELS), tf.constant(LOGITS)))
    assert loss == pytest.approx((-np.log(0.5) - np.log(0.7)) / 2, rel=1e-5)


def test_all_ignored_gives_zero():
    labels = np.full((1, 2, 2), 255)
    assert float(pixel_cross_entropy(labels, LOGITS)) == 0.0
    assert float(pixel_cross_entropy(labels, LOGITS, top_k_percent_pixels=0.3)) == 0.0


def test_class_weights_length_is_checked():
    with pytest.raises(ValueError, match="one weight per class \\(3\\); received 2"):
        pixel_cross_entropy(LABELS, LOGITS, class_weights=[1.0, 1.0])


def test_present_classes_and_se_loss():
    present = np.asarray(present_classes(LABELS, 4))
    np.testing.assert_array_equal(present, [[1, 1, 1, 0]])
    se_logits = np.array([[10.0, 10.0, 10.0, -10.0]], "float32")
    assert float(se_loss(LABELS, se_logits)) < 1e-3
    assert float(se_loss(LABELS, -se_logits)) > 5.0
