"""The classification task's loss and metrics take sparse and soft labels."""

import numpy as np
import tensorflow as tf

import official.registry_imports  # noqa: F401
from official.core import exp_factory, task_factory


def _task(label_smoothing=0.0):
    params = exp_factory.get_exp_config("resnet_digits")
    params.task.losses.label_smoothing = label_smoothing
    return task_factory.get_task(params.task)


def test_soft_labels_give_the_sparse_loss_when_one_hot():
    task = _task(label_smoothing=0.1)
    num_classes = task.config.model.num_classes
    logits = tf.constant(
        np.random.default_rng(0).normal(size=(4, num_classes)), tf.float32
    )
    sparse = tf.constant([0, 3, 5, 9])
    one_hot = tf.one_hot(sparse, num_classes)
    np.testing.assert_allclose(
        task.build_losses(one_hot, logits), task.build_losses(sparse, logits), rtol=1e-6
    )


def test_soft_labels_mix_the_losses_linearly():
    task = _task()
    num_classes = task.config.model.num_classes
    logits = tf.constant(
        np.random.default_rng(1).normal(size=(1, num_classes)), tf.float32
    )
    soft = 0.3 * tf.one_hot([2], num_classes) + 0.7 * tf.one_hot([7], num_classes)
    expected = 0.3 * task.build_losses(
        tf.constant([2]), logits
    ) + 0.7 * task.build_losses(tf.constant([7]), logits)
    np.testing.assert_allclose(task.build_losses(soft, logits), expected, rtol=1e-6)


def test_metrics_count_soft_labels_as_their_argmax():
    task = _task()
    num_classes = task.config.model.num_classes
    metrics = task.build_metrics(training=True)
    logits = tf.one_hot([1, 2], num_classes) * 5.0
    soft = 0.6 * tf.one_hot([1, 4], num_classes) + 0.4 * tf.one_hot([0, 2], num_classes)
    task.update_metrics(metrics, soft, logits)
    accuracy = {m.name: float(m.result()) for m in metrics}["accuracy"]
    assert accuracy == 0.5
