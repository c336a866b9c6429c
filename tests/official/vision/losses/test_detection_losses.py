"""Focal and Huber losses against hand computations; positives normalization."""

import math

import numpy as np
import pytest
import tensorflow as tf

from official.vision.losses import detection_losses


def test_focal_loss_by_hand():
    logits = np.array([[[2.0, -1.0], [0.5, 0.0]]], np.float32)
    targets = np.array([[1, -1]])  # anchor 0: class 1; anchor 1: background
    weights = np.array([[1.0, 0.5]], np.float32)
    alpha, gamma = 0.25, 1.5

    def term(logit, positive):
        p = 1 / (1 + math.exp(-logit))
        p_t = p if positive else 1 - p
        a = alpha if positive else 1 - alpha
        return -a * (1 - p_t) ** gamma * math.log(p_t)

    expected = (term(2.0, False) + term(-1.0, True)) + 0.5 * (
        term(0.5, False) + term(0.0, False)
    )
    loss = detection_losses.focal_loss(logits, targets, weights, alpha, gamma)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_huber_box_loss_by_hand():
    outputs = np.array([[[0.0, 0.05, 0.3, -1.0], [9.0, 9.0, 9.0, 9.0]]], np.float32)
    targets = np.zeros((1, 2, 4), np.float32)
    weights = np.array([[1.0, 0.0]], np.float32)
    delta = 0.1
    per = [0.0, 0.5 * 0.05**2, 0.1 * (0.3 - 0.05), 0.1 * (1.0 - 0.05)]
    loss = detection_losses.huber_box_loss(outputs, targets, weights, delta)
    assert float(loss) == pytest.approx(sum(per) / 4, rel=1e-5)


def test_retinanet_loss_divides_by_positives():
    labels = {
        "cls_targets": np.array([[1, -1, -1]]),
        "box_targets": np.zeros((1, 3, 4), np.float32),
        "cls_weights": np.ones((1, 3), np.float32),
        "box_weights": np.array([[1.0, 1.0, 0.0]], np.float32),
    }
    outputs = {
        "cls_outputs": np.zeros((1, 3, 2), np.float32),
        "box_outputs": np.full((1, 3, 4), 0.2, np.float32),
    }
    loss = detection_losses.retinanet_loss(outputs, labels, 0.25, 1.5, 0.1, 50.0)
    focal = detection_losses.focal_loss(
        outputs["cls_outputs"], labels["cls_targets"], labels["cls_weights"], 0.25, 1.5
    )
    assert float(loss["cls_loss"]) == pytest.approx(float(focal) / 2)
    assert float(loss["box_loss"]) == pytest.approx(2 * 0.1 * (0.2 - 0.05) / 2)
    total = float(loss["cls_loss"]) + 50 * float(loss["box_loss"])
    assert float(loss["total"]) == pytest.approx(total)


def test_normalizer_sums_positives_over_replicas():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def replica_fn():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        weights = tf.cond(replica == 0, lambda: tf.ones([3]), lambda: tf.zeros([3]))
        return detection_losses.positives_normalizer(weights)

    values = strategy.experimental_local_results(strategy.run(replica_fn))
    # 3 positives on replica 0, none on replica 1: 1.5 each, the same on both.
    assert [float(v) for v in values] == [1.5, 1.5]


def test_two_replicas_average_to_the_whole_batch_loss():
    rng = np.random.default_rng(0)
    labels = {
        "cls_targets": rng.integers(-1, 3, (4, 6)).astype(np.int32),
        "box_targets": rng.normal(size=(4, 6, 4)).astype(np.float32),
        "cls_weights": np.ones((4, 6), np.float32),
    }
    # Replica 0 (examples 0-1) has 5 positives, replica 1 (2-3) has 1.
    labels["box_weights"] = np.zeros((4, 6), np.float32)
    labels["box_weights"][0, :3] = labels["box_weights"][1, :2] = 1.0
    labels["box_weights"][3, 0] = 1.0
    outputs = {
        "cls_outputs": rng.normal(size=(4, 6, 3)).astype(np.float32),
        "box_outputs": rng.normal(size=(4, 6, 4)).astype(np.float32),
    }

    def loss_fn(labels, outputs):
        return detection_losses.retinanet_loss(outputs, labels, 0.25, 1.5, 0.1, 50.0)[
            "total"
        ]

    whole = float(loss_fn(labels, outputs))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = tf.data.Dataset.from_tensors((labels, outputs)).unbatch().batch(4)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    per_replica = strategy.run(loss_fn, args=batch)
    mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
    assert float(mean) == pytest.approx(whole, rel=1e-5)
