"""The detection generator against a brute-force numpy reference of NMS."""

import numpy as np
import pytest
import tensorflow as tf

from official.vision.ops import box_ops
from official.vision.ops.anchor_generator import generate_anchors
from official.vision.ops.detection_generator import DetectionGenerator

NUM_CLASSES = 3


def greedy_nms(boxes, scores, iou_threshold, score_threshold, limit):
    order = [
        i for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold
    ]
    kept = []
    for i in order:
        if len(kept) == limit:
            break
        if kept:
            ious = box_ops.iou(boxes[i : i + 1], boxes[kept]).numpy()[0]
            if (ious > iou_threshold).any():
                continue
        kept.append(i)
    return kept


def reference(logits, deltas, anchors, size, top_k, score_t, iou_t, limit, per_class):
    boxes = box_ops.clip_boxes(box_ops.decode_boxes(deltas, anchors), *size).numpy()
    scores = 1 / (1 + np.exp(-logits.reshape(-1).astype(np.float64)))
    top = np.argsort(-scores, kind="stable")[:top_k]
    cand_boxes = boxes[top // NUM_CLASSES] / np.array([*size, *size])
    cand_classes = top % NUM_CLASSES
    cand_scores = scores[top]
    found = []
    groups = range(NUM_CLASSES) if per_class else [None]
    for c in groups:
        index = np.flatnonzero(cand_classes == c) if per_class else np.arange(len(top))
        kept = greedy_nms(cand_boxes[index], cand_scores[index], iou_t, score_t, limit)
        found += [index[k] for k in kept]
    found.sort(key=lambda i: -cand_scores[i])
    found = found[:limit]
    return (
        cand_boxes[found] * np.array([*size, *size]),
        cand_scores[found],
        cand_classes[found],
    )


@pytest.mark.parametrize("nms_type", ["per_class", "class_agnostic"])
def test_matches_brute_force_reference(nms_type):
    size = (32, 48)
    anchors = generate_anchors(size, 3, 4, 2, [0.5, 1.0, 2.0], 2.0)
    rng = np.random.default_rng(1)
    batch = 3
    logits = rng.normal(-1.0, 1.5, (batch, len(anchors), NUM_CLASSES)).astype(
        np.float32
    )
    deltas = rng.normal(0, 0.3, (batch, len(anchors), 4)).astype(np.float32)
    generator = DetectionGenerator(
        anchors, size, NUM_CLASSES, pre_nms_top_k=60, score_threshold=0.3,
        iou_threshold=0.4, max_detections=10, nms_type=nms_type,
    )  # fmt: skip
    out = {k: v.numpy() for k, v in generator(logits, deltas).items()}
    # The same through a graph with an unknown batch size (map_fn path).
    specs = [
        tf.TensorSpec([None, len(anchors), NUM_CLASSES], tf.float32),
        tf.TensorSpec([None, len(anchors), 4], tf.float32),
    ]
    graph_out = tf.function(generator, input_signature=specs)(logits, deltas)
    for key, value in graph_out.items():
        assert np.allclose(value.numpy(), out[key], atol=1e-5), key
    for i in range(batch):
        boxes, scores, classes = reference(
            logits[i], deltas[i], anchors, size, 60, 0.3, 0.4, 10,
            nms_type == "per_class",
        )  # fmt: skip
        n = int(out["num_detections"][i])
        assert n == len(scores) > 0
        assert np.allclose(out["detection_scores"][i, :n], scores, atol=1e-5)
        assert out["detection_classes"][i, :n].tolist() == classes.tolist()
        assert np.allclose(out["detection_boxes"][i, :n], boxes, atol=1e-3)
        assert (out["detection_classes"][i, n:] == -1).all()
        assert not out["detection_boxes"][i, n:].any()


def test_per_class_keeps_overlapping_boxes_of_other_classes():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    logits = np.array([[[5.0, -9.0], [-9.0, 4.0]]], np.float32)
    deltas = np.zeros((1, 2, 4), np.float32)
    per_class = DetectionGenerator(anchors, (16, 16), 2, nms_type="per_class")
    agnostic = DetectionGenerator(anchors, (16, 16), 2, nms_type="class_agnostic")
    assert per_class(logits, deltas)["num_detections"].numpy().tolist() == [2]
    assert agnostic(logits, deltas)["num_detections"].numpy().tolist() == [1]


def test_bad_arguments_are_named():
    anchors = np.zeros((1, 4), np.float32)
    with pytest.raises(ValueError, match="nms_type must be one of per_class"):
        DetectionGenerator(anchors, (8, 8), 2, nms_type="soft")
    with pytest.raises(ValueError, match="max_detections must be >= 1"):
        DetectionGenerator(anchors, (8, 8), 2, max_detections=0)


def test_a_batch_runs_without_a_per_image_loop():
    """Any batch but one is one combined suppression (ONNX-convertible)."""
    anchors = generate_anchors((32, 32), 3, 4, 1, [1.0], 2.0)
    generator = DetectionGenerator(anchors, (32, 32), NUM_CLASSES)
    specs = [
        tf.TensorSpec([None, len(anchors), NUM_CLASSES], tf.float32),
        tf.TensorSpec([None, len(anchors), 4], tf.float32),
    ]
    graph = tf.function(generator).get_concrete_function(*specs).graph
    ops = {op.type for op in graph.get_operations()}
    assert "CombinedNonMaxSuppression" in ops
    assert not ops & {"While", "StatelessWhile", "TensorListReserve"}, ops
