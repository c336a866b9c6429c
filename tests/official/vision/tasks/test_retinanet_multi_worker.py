"""COCO mAP under multi_worker_mirrored: two workers evaluate the whole set.

Two processes on 127.0.0.1 (TF_CONFIG) evaluate one checkpoint of a tiny
RetinaNet on 13 validation images of the synthetic shapes (7 and 6, so one
worker steps once on an empty batch while the other finishes its shard).
Each must report the COCO numbers of a single-process evaluation of all 13
images, not those of its shard. About 40 s on 2 cores: `make test-all` runs it.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from official.core.train_lib import run_experiment
from official.datasets import detection_shapes
from tests.official.core.test_multi_worker import on_free_ports, results, tf_config
from tests.official.vision.tasks.test_retinanet import (
    save_confident_checkpoint,
    tiny_config,
    tiny_overrides,
)

pytestmark = pytest.mark.slow

# Per-replica batch 2 with two workers: 4 steps each, the last of one empty. Up to 100
# detections per image, suppressed at IoU 0.7: some of the random boxes
# find an object, so the AP is above 0 (about 1e-4, AP50 6e-4).
EVAL_OVERRIDES = (
    "task.validation_data.global_batch_size=4,"
    "task.model.detection_generator.max_detections=100,"
    "task.model.detection_generator.pre_nms_top_k=1000,"
    "task.model.detection_generator.iou_threshold=0.7"
)

WORKER = textwrap.dedent("""
    import json, sys
    import official.registry_imports  # noqa: F401
    import official.core.trainer as trainer_lib
    from official.core.config_loader import load_experiment_config
    from official.core.train_lib import run_experiment
    overrides, model_dir = sys.argv[1], sys.argv[2]
    cfg = load_experiment_config("retinanet_shapes", [], overrides)
    seen = {}
    original = trainer_lib.Trainer.evaluate
    def evaluate(self, dataset):
        logs = original(self, dataset)
        seen["images"] = self.eval_metrics[0].num_images
        return logs
    trainer_lib.Trainer.evaluate = evaluate
    logs = run_experiment(cfg, "eval", model_dir)
    print("RESULT " + json.dumps({"images": seen["images"], **logs}))
""")


def test_two_workers_report_the_ap_of_the_whole_set(tmp_path):
    data = str(tmp_path / "shapes")
    detection_shapes.write_detection_shapes(
        data, num_train=4, num_validation=13, image_size=64
    )
    single_dir = str(tmp_path / "single")
    save_confident_checkpoint(tiny_config(data), single_dir)
    workers_dir = str(tmp_path / "workers")
    shutil.copytree(single_dir, workers_dir)
    single = run_experiment(tiny_config(data, EVAL_OVERRIDES), "eval", single_dir)
    assert single["AP50"] > 0.0 and single["ARmax100"] > 0.0, single

    overrides = tiny_overrides(
        data,
        EVAL_OVERRIDES + ",runtime.distribution_strategy=multi_worker_mirrored,"
        "runtime.worker_start_timeout_seconds=120",
    )

    def run(ports, started):
        for index in range(2):
            started.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, overrides, workers_dir],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=dict(os.environ, TF_CONFIG=tf_config(ports, index)),
                )
            )
        return results(started)

    reports = []
    outcomes = on_free_ports(run)
    for code, out, _ in outcomes:
        assert code == 0, "\n\n".join(e[-3000:] for _, _, e in outcomes)
        line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
        reports.append(json.loads(line[len("RESULT ") :]))
    for report in reports:
        assert report["images"] == 13
        for key in ("AP", "AP50", "AP75", "ARmax100", "AP/circle", "AP/square"):
            assert report[key] == pytest.approx(single[key], abs=1e-9), key
    # The chief wrote the results of the whole set.
    with open(os.path.join(workers_dir, "eval_results.json")) as f:
        assert json.load(f)["AP"] == pytest.approx(single["AP"], abs=1e-9)
