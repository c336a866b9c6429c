"""Detection input: decoding, and every augmentation keeping boxes on their objects."""

import numpy as np
import pytest
import tensorflow as tf

from official.datasets import detection_shapes
from official.vision.dataloaders import detection_input as di
from official.vision.dataloaders import detection_parser as dp
from official.vision.dataloaders.image_normalization import MEAN_RGB, STDDEV_RGB
from official.vision.ops.anchor_generator import generate_anchors
from official.vision.ops.target_assigner import AnchorLabeler

# Two white rectangles on black, in pixels [ymin, xmin, ymax, xmax].
BOXES = np.array([[8, 10, 30, 40], [50, 60, 70, 90]], np.float32)
HEIGHT, WIDTH = 80, 100


def record():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for y0, x0, y1, x1 in BOXES.astype(int):
        image[y0:y1, x0:x1] = 255
    normalized = BOXES / [HEIGHT, WIDTH, HEIGHT, WIDTH]
    png = tf.io.encode_png(image).numpy()
    return di.make_example(png, normalized.tolist(), [1, 2], is_crowd=[0, 1])


def parser(is_training, **kwargs):
    anchors = generate_anchors((64, 64), 3, 5, 1, [1.0], 2.0)
    return dp.DetectionParser(
        (64, 64), AnchorLabeler(anchors), is_training, max_num_boxes=4, **kwargs
    )


def pixels(image):
    return image.numpy() * np.array(STDDEV_RGB) + np.array(MEAN_RGB)


def extent(bright):
    rows = np.flatnonzero(bright.any(axis=1))
    cols = np.flatnonzero(bright.any(axis=0))
    return np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], np.float32)


def test_decode_reads_boxes_classes_crowd_and_default_area():
    decoded = di.decode_example(tf.constant(record()))
    assert decoded["image"].shape == (HEIGHT, WIDTH, 3)
    boxes = decoded["boxes"].numpy() * [HEIGHT, WIDTH, HEIGHT, WIDTH]
    assert np.allclose(boxes, BOXES, atol=1e-4)
    assert decoded["classes"].numpy().tolist() == [1, 2]
    assert decoded["is_crowd"].numpy().tolist() == [False, True]
    assert np.allclose(decoded["area"].numpy(), [22 * 30, 20 * 30], rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_training_augmentation_keeps_boxes_on_their_objects(seed):
    decoded = di.decode_example(tf.constant(record()))
    p = parser(True, aug_scale_min=0.5, aug_scale_max=2.0)
    image, labels = p(decoded, tf.constant([seed, 7], tf.int64))
    assert image.shape == (64, 64, 3)
    bright = pixels(image).mean(axis=-1) > 128
    boxes = labels["groundtruth_boxes"].numpy()
    classes = labels["groundtruth_classes"].numpy()
    kept = classes >= 0
    assert np.all(boxes[~kept] == 0)
    for box in boxes[kept]:
        y0, x0, y1, x1 = np.round(box).astype(int)
        inside = bright[y0:y1, x0:x1]
        assert inside.size and inside.mean() > 0.9  # the box holds its object
        found = extent(bright[max(y0 - 3, 0) : y1 + 3, max(x0 - 3, 0) : x1 + 3])
        found += [max(y0 - 3, 0), max(x0 - 3, 0)] * 2
        assert np.abs(found - box).max() <= 1.0  # ... and only it (up to 1 px)


def test_flip_maps_boxes_exactly():
    image = tf.constant(np.zeros((4, 10, 3), np.float32))
    boxes = tf.constant([[0.0, 1.0, 2.0, 4.0]])
    flipped_image, flipped = dp.random_flip(image, boxes, tf.constant([0, 0], tf.int64))
    twice = dp.flip_boxes(dp.flip_boxes(boxes, 10), 10)
    assert np.allclose(twice, boxes)
    assert np.allclose(dp.flip_boxes(boxes, 10), [[0.0, 6.0, 2.0, 9.0]])
    assert flipped.shape == (1, 4) and flipped_image.shape == (4, 10, 3)


def test_evaluation_fits_pads_and_keeps_original_boxes():
    decoded = di.decode_example(tf.constant(record()))
    image, labels = parser(False)(decoded)
    info = labels["image_info"].numpy()
    assert np.allclose(info, [80, 100, 51 / 80, 0.64])  # 51 x 64 px, then padded
    assert np.allclose(labels["groundtruth_boxes"].numpy()[:2], BOXES, atol=1e-3)
    assert labels["groundtruth_is_crowd"].numpy().tolist() == [0, 1, 0, 0]
    bright = pixels(image).mean(axis=-1) > 128
    assert np.abs(extent(bright[:30, :]) - BOXES[0] * info[[2, 3, 2, 3]]).max() <= 1.0
    assert not bright[52:, :].any()  # padding below the resized image
    # The crowd box makes no positive anchor.
    assert set(labels["cls_targets"].numpy().tolist()) <= {-1, 1}


def test_dataset_batches_and_a_wrong_source_is_named(tmp_path):
    from official.vision.configs.retinanet import DetectionDataConfig

    summary = detection_shapes.write_detection_shapes(
        str(tmp_path), num_train=4, num_validation=2, image_size=32
    )
    data = DetectionDataConfig(
        input_path=summary["validation"]["pattern"],
        global_batch_size=2,
        is_training=False,
        drop_remainder=False,
        max_num_boxes=4,
    )
    images, labels = next(iter(di.build_detection_dataset(data, parser(False))))
    assert images.shape == (2, 64, 64, 3)
    assert labels["groundtruth_boxes"].shape == (2, 4, 4)
    with pytest.raises(ValueError, match="convert COCO with tools/convert_coco.py"):
        di.build_detection_dataset(
            DetectionDataConfig(tfds_name="coco/2017", tfds_split="train"), None
        )
