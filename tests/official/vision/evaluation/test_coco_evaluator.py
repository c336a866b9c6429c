"""COCO mAP: perfect and shifted predictions against pycocotools run directly."""

import contextlib
import io

import numpy as np
import pytest
import tensorflow as tf
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from official.vision.evaluation import coco_evaluator


def dataset(seed=0, num_images=6):
    rng = np.random.default_rng(seed)
    truths = []
    for _ in range(num_images):
        n = int(rng.integers(1, 5))
        tl = rng.uniform(0, 300, (n, 2))
        size = rng.uniform(8, 150, (n, 2))
        boxes = np.concatenate([tl, tl + size], axis=1)
        truths.append(
            {
                "boxes": boxes,
                "classes": rng.integers(1, 4, n),
                "is_crowd": (rng.uniform(size=n) < 0.15).astype(int),
                "area": size[:, 0] * size[:, 1],
            }
        )
    return truths


def shifted(truths, seed=1):
    rng = np.random.default_rng(seed)
    found = []
    for t in truths:
        n = len(t["classes"])
        shift = rng.uniform(-0.25, 0.25, (n, 4)) * np.tile(
            t["boxes"][:, 2:] - t["boxes"][:, :2], 2
        )
        found.append(
            {
                "boxes": t["boxes"] + shift,
                "scores": rng.uniform(0.1, 1.0, n),
                "classes": np.where(rng.uniform(size=n) < 0.2, 3, t["classes"]),
            }
        )
    return found


def pycocotools_directly(truths, found):
    """The same evaluation through pycocotools' own JSON structures."""
    gt = {"images": [], "annotations": [], "categories": [{"id": c} for c in range(4)]}
    dets = []
    for i, (t, f) in enumerate(zip(truths, found)):
        gt["images"].append({"id": i + 7})
        for box, c, crowd, area in zip(
            t["boxes"], t["classes"], t["is_crowd"], t["area"]
        ):
            y0, x0, y1, x1 = box.tolist()
            gt["annotations"].append(
                {"id": len(gt["annotations"]) + 1, "image_id": i + 7, "category_id": int(c),
                 "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float(area),
                 "iscrowd": int(crowd)}
            )  # fmt: skip
        for box, s, c in zip(f["boxes"], f["scores"], f["classes"]):
            y0, x0, y1, x1 = box.tolist()
            dets.append(
                {"image_id": i + 7, "category_id": int(c),
                 "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(s)}
            )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_perfect_predictions_score_one():
    truths = dataset()
    perfect = [
        {
            "boxes": t["boxes"],
            "scores": np.ones(len(t["classes"])),
            "classes": t["classes"],
        }
        for t in truths
    ]
    metrics, per_class = coco_evaluator.coco_metrics(truths, perfect, range(4))
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AP50"] == pytest.approx(1.0)
    assert per_class[0] == -1.0  # no ground truth of class 0
    assert all(per_class[c] == pytest.approx(1.0) for c in (1, 2, 3))


def test_shifted_predictions_match_pycocotools():
    truths = dataset()
    found = shifted(truths)
    metrics, _ = coco_evaluator.coco_metrics(truths, found, range(4))
    expected = pycocotools_directly(truths, found)
    assert [metrics[n] for n in coco_evaluator.METRIC_NAMES] == pytest.approx(
        list(expected)
    )
    assert 0.05 < metrics["AP"] < 0.9


def test_no_detections_and_mismatched_lengths():
    truths = dataset(num_images=2)
    empty = [{"boxes": np.zeros((0, 4)), "scores": [], "classes": []}] * 2
    metrics, per_class = coco_evaluator.coco_metrics(truths, empty, range(4))
    assert metrics["AP"] == 0.0 and per_class[0] == -1.0
    with pytest.raises(ValueError, match="one detection entry per image"):
        coco_evaluator.coco_metrics(truths, empty[:1], range(4))


def batch_of(truths, found, scale, max_boxes=5):
    """Labels and detector outputs as the task passes them (input pixels)."""
    n = len(truths)
    labels = {
        "groundtruth_boxes": np.zeros((n, max_boxes, 4), np.float32),
        "groundtruth_classes": -np.ones((n, max_boxes), np.int32),
        "groundtruth_is_crowd": np.zeros((n, max_boxes), np.int32),
        "groundtruth_area": np.zeros((n, max_boxes), np.float32),
        "image_info": np.tile(np.array([[400, 500, scale, scale]], np.float32), [n, 1]),
    }
    outputs = {
        "detection_boxes": np.zeros((n, max_boxes, 4), np.float32),
        "detection_scores": np.zeros((n, max_boxes), np.float32),
        "detection_classes": -np.ones((n, max_boxes), np.int32),
        "num_detections": np.zeros((n,), np.int32),
    }
    for i, (t, f) in enumerate(zip(truths, found)):
        k = len(t["classes"])
        labels["groundtruth_boxes"][i, :k] = t["boxes"]
        labels["groundtruth_classes"][i, :k] = t["classes"]
        labels["groundtruth_is_crowd"][i, :k] = t["is_crowd"]
        labels["groundtruth_area"][i, :k] = t["area"]
        outputs["detection_boxes"][i, :k] = f["boxes"] * scale
        outputs["detection_scores"][i, :k] = f["scores"]
        outputs["detection_classes"][i, :k] = f["classes"]
        outputs["num_detections"][i] = k
    return labels, outputs


def test_metric_accumulates_batches_in_a_graph_like_one_evaluation():
    truths = dataset(num_images=6)
    found = [
        dict(f, boxes=np.clip(f["boxes"], 0, [400, 500, 400, 500]))
        for f in shifted(truths)
    ]
    expected, per_class = coco_evaluator.coco_metrics(truths, found, range(4))
    metric = coco_evaluator.COCOMetric(4)
    views = [
        coco_evaluator.COCOView(metric, "AP50"),
        coco_evaluator.COCOView(metric, 2),
    ]

    @tf.function
    def update(labels, outputs):
        metric.update_state(labels, outputs)

    # Two "replicas" (or batches), each with its own images, at scale 0.5.
    update(*batch_of(truths[:4], found[:4], 0.5))
    update(*batch_of(truths[4:], found[4:], 0.5))
    assert metric.num_images == 6
    assert float(metric.result()) == pytest.approx(expected["AP"], abs=1e-6)
    assert float(views[0].result()) == pytest.approx(expected["AP50"], abs=1e-6)
    assert float(views[1].result()) == pytest.approx(per_class[2], abs=1e-6)
    metric.reset_state()
    assert metric.num_images == 0


def test_merge_across_workers_evaluates_every_workers_images():
    """Two workers' metrics, each of its own shard, merged by a gather."""
    truths = dataset(num_images=7)
    found = [
        dict(f, boxes=np.clip(f["boxes"], 0, [400, 500, 400, 500]))
        for f in shifted(truths)
    ]
    expected, per_class = coco_evaluator.coco_metrics(truths, found, range(4))
    workers = [coco_evaluator.COCOMetric(4), coco_evaluator.COCOMetric(4)]
    workers[0].update_state(*batch_of(truths[:4], found[:4], 1.0))
    workers[1].update_state(*batch_of(truths[4:], found[4:], 1.0))
    shard_ap = workers[0].evaluate()[0]["AP"]
    # What each worker sends, in call order (a gather of one worker leaves
    # its images as they were).
    sent = [[], []]
    for index, metric in enumerate(workers):
        metric.merge_across_workers(lambda a, i=index: sent[i].append(a) or a)
        assert metric.num_images == (4, 3)[index]
    # The gather concatenates in worker order, as
    # `distribute.gather_across_workers` does.
    for metric in workers:
        calls = iter(range(len(sent[0])))

        def gather(array, calls=calls):
            call = next(calls)
            return np.concatenate([arrays[call] for arrays in sent])

        metric.merge_across_workers(gather)
        assert metric.num_images == 7
        metrics, classes = metric.evaluate()
        assert metrics["AP"] == pytest.approx(expected["AP"], abs=1e-9)
        assert metrics["ARmax100"] == pytest.approx(expected["ARmax100"], abs=1e-9)
        assert classes == pytest.approx(per_class, abs=1e-9)
    assert shard_ap != pytest.approx(expected["AP"], abs=1e-3)
