"""tf-models-official's own train step, timed on a batch it is handed.

`tools/benchmark_train.py --reference=tf_models_official` runs this script
with the Python of a virtual environment that holds tf-models-official
(2.20, with its TensorFlow and tf-keras), in isolated mode (`python -I`), so
that `official` there is tf-models-official's package, never Garden's. It
imports nothing of Garden.

    python -I tools/tfm_reference_step.py SPEC.json RESULT.json

SPEC.json: `experiment` (a tf-models-official experiment, `resnet_imagenet`),
`model_id`, `input_size` [h, w, c], `num_classes`, `global_batch_size`,
`mixed_precision_dtype`, `num_loops`, `steps_per_loop`, and `batch_file`, an
`.npz` with `images` (float32, normalized) and `labels` (int32) — the batch
Garden's run trained on. What runs is tf-models-official's
`base_trainer.Trainer` (orbit's `tf.while_loop` over `strategy.run` of the
task's `train_step`, the optimizer `train_utils.create_optimizer` builds from
the experiment), on that one batch repeated: one untimed warm-up loop, then
`num_loops` timed loops. RESULT.json: per-loop wall seconds, user and system
CPU seconds and page faults, the versions, and whether oneDNN is on.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _versions() -> dict:
    from importlib import metadata

    try:
        tfm = metadata.version("tf-models-official")
    except metadata.PackageNotFoundError:
        raise SystemExit(
            f"error: {sys.executable} has no tf-models-official installed "
            "(pip install tf-models-official==2.20.0 tensorflow==2.20.0 there)."
        ) from None
    return {"tf_models_official": tfm, "tensorflow": metadata.version("tensorflow")}


def _usage() -> tuple[float, float, int, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt, r.ru_majflt


def run(spec: dict) -> dict:
    """Times tf-models-official's train loop as `spec` says (see the docstring)."""
    versions = _versions()
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    from official.core import base_trainer, exp_factory, task_factory, train_utils
    from official.modeling import performance
    from official.vision import registry_imports  # noqa: F401

    params = exp_factory.get_exp_config(spec["experiment"])
    steps = spec["steps_per_loop"]
    params.override(
        {
            "task": {
                "model": {
                    "num_classes": spec["num_classes"],
                    "input_size": spec["input_size"],
                    "backbone": {"resnet": {"model_id": spec["model_id"]}},
                },
                "train_data": {"global_batch_size": spec["global_batch_size"]},
            },
            "runtime": {"mixed_precision_dtype": spec["mixed_precision_dtype"]},
            "trainer": {
                "train_steps": steps * (spec["num_loops"] + 1),
                "steps_per_loop": steps,
            },
        },
        is_strict=True,
    )
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
    batch = np.load(spec["batch_file"])
    dataset = tf.data.Dataset.from_tensors(
        (tf.constant(batch["images"]), tf.constant(batch["labels"]))
    ).repeat()
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        task = task_factory.get_task(params.task)
        model = task.build_model()
        optimizer = train_utils.create_optimizer(task, params)
        trainer = base_trainer.Trainer(
            params,
            task,
            model=model,
            optimizer=optimizer,
            train=True,
            evaluate=False,
            train_dataset=strategy.experimental_distribute_dataset(dataset),
        )
    loops = []
    for _ in range(spec["num_loops"] + 1):
        before = _usage()
        start = time.perf_counter()
        logs = trainer.train(tf.constant(steps, dtype=tf.int32))
        loss = float(logs["training_loss"])
        seconds = time.perf_counter() - start
        after = _usage()
        loops.append(
            {
                "seconds": seconds,
                "user_seconds": after[0] - before[0],
                "system_seconds": after[1] - before[1],
                "minor_faults": after[2] - before[2],
                "major_faults": after[3] - before[3],
                "loss": loss,
            }
        )
    return {
        **versions,
        "onednn": bool(_pywrap_util_port.IsMklEnabled()),
        "trainable_parameters": int(
            sum(np.prod(v.shape) for v in model.trainable_variables)
        ),
        "loops": loops,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        spec = json.load(f)
    result = run(spec)
    with open(argv[2], "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
