"""Transfer on the embedded data: pretrain on shapes, fine-tune on digits.

`run_transfer_demo` trains `resnet_digits`' model (ResNet-10 at a quarter
of the width, 32 px) briefly on the generated shape folder
(official/datasets/shape_folder.py: circles, squares, stripes), then trains
it on the embedded digits twice for the same number of steps: once from
those weights with the backbone frozen (`trainer.init_checkpoint` = the
shapes run, `init_checkpoint_modules=backbone`,
`trainer.finetune.freeze_patterns=['^backbone/']`: only the new head
trains) and once from scratch. All three runs go through
`official.core.train_lib.run_experiment`, as the binary does.

Run:

    python -m official.vision.transfer_demo --work_dir=runs/transfer_demo

MEASURED is filled in from a run of the defaults.
"""

from __future__ import annotations

import os

PRETRAIN_STEPS = 200
FINETUNE_STEPS = 40
IMAGE_SIZE = 32


def _loop(steps: int) -> dict:
    """Overrides that train `steps` steps and evaluate once at the end."""
    per_loop = min(steps, 20)
    return {
        "trainer.train_steps": steps,
        "trainer.steps_per_loop": per_loop,
        "trainer.checkpoint_interval": steps - steps % per_loop,
        "trainer.validation_interval": steps - steps % per_loop,
    }


def run_transfer_demo(
    work_dir: str,
    pretrain_steps: int = PRETRAIN_STEPS,
    finetune_steps: int = FINETUNE_STEPS,
) -> dict[str, float]:
    """Runs the three trainings under `work_dir`; returns their accuracies.

    Returns:
        `{"pretrain_accuracy"` (shapes validation), `"finetuned_accuracy"`
        and `"scratch_accuracy"` (digits validation, after `finetune_steps`)}.
    """
    from official.core.config_loader import load_experiment_config
    from official.core.train_lib import run_experiment
    from official.datasets import digits, shape_folder

    data = os.path.join(work_dir, "data")
    digits.write_digits_tfrecords(os.path.join(data, "digits"), image_size=IMAGE_SIZE)
    shapes = os.path.join(data, "shapes")
    shape_folder.write_shape_folder(shapes, image_size=IMAGE_SIZE)
    shapes_dir = os.path.join(work_dir, "shapes")
    pretrain = load_experiment_config(
        "resnet_digits",
        params_override={
            "task.train_data.input_path": os.path.join(shapes, "train"),
            "task.validation_data.input_path": os.path.join(shapes, "validation"),
            "task.train_data.input_format": "image_folder",
            "task.validation_data.input_format": "image_folder",
            "task.model.num_classes": 0,
            "task.train_data.num_examples": 0,
            **_loop(pretrain_steps),
        },
    )
    logs = run_experiment(pretrain, "train_and_eval", shapes_dir)
    out = {"pretrain_accuracy": float(logs["accuracy"])}
    digits_data = {
        "task.train_data.input_path": os.path.join(data, "digits", "train-*"),
        "task.validation_data.input_path": os.path.join(data, "digits", "validation-*"),
        **_loop(finetune_steps),
    }
    finetune = load_experiment_config(
        "resnet_digits",
        params_override={
            **digits_data,
            "trainer.init_checkpoint": shapes_dir,
            "trainer.init_checkpoint_modules": "backbone",
            "trainer.finetune.freeze_patterns": ["^backbone/"],
        },
    )
    logs = run_experiment(
        finetune, "train_and_eval", os.path.join(work_dir, "finetuned")
    )
    out["finetuned_accuracy"] = float(logs["accuracy"])
    scratch = load_experiment_config("resnet_digits", params_override=digits_data)
    logs = run_experiment(scratch, "train_and_eval", os.path.join(work_dir, "scratch"))
    out["scratch_accuracy"] = float(logs["accuracy"])
    return out


def main(argv: list[str]) -> None:
    del argv
    from absl import flags

    result = run_transfer_demo(flags.FLAGS.work_dir)
    print(" ".join(f"{k}={v:.3f}" for k, v in result.items()))


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("work_dir", "runs/transfer_demo", "Where to write.")
    app.run(main)
