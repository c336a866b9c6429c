"""tf-models-official's own train step, timed on a batch it is handed.

`tools/benchmark_train.py --reference=tf_models_official` runs this script
with the Python of a virtual environment that holds tf-models-official
(2.20, with its TensorFlow and tf-keras), in isolated mode (`python -I`), so
that `official` there is tf-models-official's package, never Garden's. It
imports nothing of Garden.

    python -I tools/tfm_reference_step.py SPEC.json RESULT.json

SPEC.json (`tools/benchmark_host.reference_spec`): `family`, `experiment`
(a tf-models-official experiment), the family's model settings,
`global_batch_size`, `mixed_precision_dtype`, `num_loops`,
`steps_per_loop`, and `batch_file`, an `.npz` of the arrays Garden's run
trained on (`tools/benchmark_families.py`):

- `classification` (`resnet_imagenet`, `model_id`, `input_size`,
  `num_classes`): `images` (float32, normalized) and `labels` (int32).
- `retinanet` (`retinanet_resnetfpn_coco` with the spec's ResNet depth,
  levels, anchors, FPN and head widths, matching thresholds and loss
  constants; no initial checkpoint): `images`, `boxes` (float32 `[batch,
  boxes, 4]`, pixels) and `classes` (int32). The anchor targets come from
  tf-models-official's `anchor.AnchorLabeler` on those boxes, as its
  RetinaNet parser makes them.
- `sentence_prediction` (`bert/sentence_prediction` with a BERT encoder of
  the spec's shape, the classifier on the encoder's pooler as in Garden):
  `input_word_ids`, `input_mask`, `input_type_ids` (int32 `[batch,
  seq_length]`) and `labels` (int32), fed as `label_ids`.

What runs is tf-models-official's `base_trainer.Trainer` (orbit's
`tf.while_loop` over `strategy.run` of the task's `train_step`, the
optimizer `train_utils.create_optimizer` builds from the experiment), on that
one batch repeated: one untimed warm-up loop, then `num_loops` timed loops.
RESULT.json: per-loop wall seconds, user and system CPU seconds, page faults
and mean loss, the versions, and whether oneDNN is on.
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


def _classification_override(spec: dict, train_steps: int) -> tuple[dict, dict]:
    task = {
        "model": {
            "num_classes": spec["num_classes"],
            "input_size": spec["input_size"],
            "backbone": {"resnet": {"model_id": spec["model_id"]}},
        }
    }
    return task, {}


def _classification_batch(spec: dict, batch: dict):
    import tensorflow as tf

    return tf.constant(batch["images"]), tf.constant(batch["labels"])


def _retinanet_override(spec: dict, train_steps: int) -> tuple[dict, dict]:
    task = {
        "init_checkpoint": "",
        "model": {
            "num_classes": spec["num_classes"],
            "input_size": spec["input_size"],
            "min_level": spec["min_level"],
            "max_level": spec["max_level"],
            "anchor": {
                "num_scales": spec["num_scales"],
                "aspect_ratios": spec["aspect_ratios"],
                "anchor_size": spec["anchor_size"],
            },
            "backbone": {"resnet": {"model_id": spec["model_id"]}},
            "decoder": {"fpn": {"num_filters": spec["decoder_filters"]}},
            "head": {
                "num_convs": spec["head_convs"],
                "num_filters": spec["head_filters"],
            },
            "detection_generator": {"box_coder_weights": spec["box_coder_weights"]},
        },
        "losses": {
            "focal_loss_alpha": spec["focal_alpha"],
            "focal_loss_gamma": spec["focal_gamma"],
            "huber_loss_delta": spec["huber_delta"],
            "box_loss_weight": spec["box_loss_weight"],
        },
        "train_data": {
            "parser": {
                "match_threshold": spec["match_threshold"],
                "unmatched_threshold": spec["unmatched_threshold"],
            }
        },
    }
    return task, {}


def _retinanet_batch(spec: dict, batch: dict):
    """Images and the anchor targets of tf-models-official's labeler, batched."""
    import tensorflow as tf

    from official.vision.ops import anchor

    height, width = spec["input_size"][:2]
    anchor_boxes = anchor.build_anchor_generator(
        min_level=spec["min_level"],
        max_level=spec["max_level"],
        num_scales=spec["num_scales"],
        aspect_ratios=spec["aspect_ratios"],
        anchor_size=spec["anchor_size"],
    )(image_size=(height, width))
    labeler = anchor.AnchorLabeler(
        match_threshold=spec["match_threshold"],
        unmatched_threshold=spec["unmatched_threshold"],
        box_coder_weights=spec["box_coder_weights"],
    )
    per_image = []
    for boxes, classes in zip(batch["boxes"], batch["classes"]):
        cls_targets, box_targets, _, cls_weights, box_weights = labeler.label_anchors(
            anchor_boxes, tf.constant(boxes), tf.constant(classes)[:, None]
        )
        per_image.append(
            {
                "cls_targets": cls_targets,
                "box_targets": box_targets,
                "cls_weights": cls_weights,
                "box_weights": box_weights,
            }
        )
    labels = tf.nest.map_structure(lambda *x: tf.stack(x), *per_image)
    return tf.constant(batch["images"]), labels


def _sentence_override(spec: dict, train_steps: int) -> tuple[dict, dict]:
    task = {
        "init_checkpoint": "",
        "model": {
            "num_classes": spec["num_classes"],
            "use_encoder_pooler": True,
            "encoder": {
                "type": "bert",
                "bert": {
                    "vocab_size": spec["vocab_size"],
                    "hidden_size": spec["hidden_size"],
                    "num_layers": spec["num_layers"],
                    "num_attention_heads": spec["num_heads"],
                    "intermediate_size": spec["intermediate_size"],
                    "dropout_rate": spec["dropout_rate"],
                    "attention_dropout_rate": spec["attention_dropout_rate"],
                    "max_position_embeddings": spec["max_sequence_length"],
                    "type_vocab_size": spec["type_vocab_size"],
                },
            },
        },
    }
    # The experiment leaves the schedule's length to the run: linear decay
    # over the run after 10 % warmup, as Garden's recipe.
    trainer = {
        "optimizer_config": {
            "learning_rate": {"polynomial": {"decay_steps": train_steps}},
            "warmup": {"polynomial": {"warmup_steps": max(1, train_steps // 10)}},
        }
    }
    return task, trainer


def _sentence_batch(spec: dict, batch: dict):
    import tensorflow as tf

    names = ("input_word_ids", "input_mask", "input_type_ids")
    features = {name: tf.constant(batch[name]) for name in names}
    return features, {"label_ids": tf.constant(batch["labels"])}


def _register(family: str) -> None:
    """Imports what registers the family's experiments and tasks."""
    if family == "sentence_prediction":
        from official.nlp import tasks  # noqa: F401
        from official.nlp.configs import finetuning_experiments  # noqa: F401
    else:
        from official.vision import registry_imports  # noqa: F401


# family -> (the experiment's overrides, the batch as its input pipeline gives it)
_FAMILIES = {
    "classification": (_classification_override, _classification_batch),
    "retinanet": (_retinanet_override, _retinanet_batch),
    "sentence_prediction": (_sentence_override, _sentence_batch),
}


def run(spec: dict) -> dict:
    """Times tf-models-official's train loop as `spec` says (see the docstring)."""
    versions = _versions()
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    from official.core import base_trainer, exp_factory, task_factory, train_utils
    from official.modeling import performance

    family = spec.get("family", "classification")
    if family not in _FAMILIES:
        raise SystemExit(
            f"error: unknown family {family!r}; this script runs "
            f"{', '.join(_FAMILIES)}."
        )
    _register(family)
    params = exp_factory.get_exp_config(spec["experiment"])
    steps = spec["steps_per_loop"]
    train_steps = steps * (spec["num_loops"] + 1)
    task_override, trainer_override = _FAMILIES[family][0](spec, train_steps)
    params.override(
        {
            "task": {
                **task_override,
                "train_data": {
                    **task_override.get("train_data", {}),
                    "global_batch_size": spec["global_batch_size"],
                },
            },
            "runtime": {"mixed_precision_dtype": spec["mixed_precision_dtype"]},
            "trainer": {
                **trainer_override,
                "train_steps": train_steps,
                "steps_per_loop": steps,
            },
        },
        is_strict=True,
    )
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
    batch = dict(np.load(spec["batch_file"]))
    element = _FAMILIES[family][1](spec, batch)
    dataset = tf.data.Dataset.from_tensors(element).repeat()
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
