"""Every registered vision recipe states its durations in epochs."""

import pytest

from official.base.registries import EXPERIMENTS
from official.core import durations, exp_factory

# (train_steps, checkpoint_interval, validation_interval, warmup_steps,
# decay_steps) at each recipe's own global batch size.
STEPS = {
    "resnet_imagenet": (28151, 312, 1560, 1564, 28151),
    "resnet_rs_imagenet": (109475, 312, 3120, 1564, 109475),
    "mobilenet_imagenet": (156393, 312, 1560, 1564, 782),
    "efficientnet_imagenet": (109475, 312, 1560, 1564, 751),
    "vit_imagenet": (93836, 312, 3120, 10000, 93836),
    "resnet_digits": (674, 220, 220, 23, 674),
    "deeplabv3_pascal": (30000, 2000, 2000, 0, 30000),
    "deeplabv3plus_cityscapes": (90000, 5000, 5000, 0, 90000),
    "fcn_pascal": (40000, 4000, 4000, 0, 40000),
    "deeplabv3_shapes": (1000, 500, 500, 0, 1000),
}
# Recipes on external data quote published results, not ones measured here.
PUBLISHED = [
    name for name in STEPS if name not in ("resnet_digits", "deeplabv3_shapes")
]


def test_every_experiment_is_listed():
    assert set(STEPS) <= {name for name, _ in exp_factory.describe_experiments()}


@pytest.mark.parametrize("name", sorted(STEPS))
def test_recipe_states_epochs_and_keeps_its_steps(name):
    cfg = exp_factory.get_exp_config(name)
    trainer = cfg.trainer
    opt = trainer.optimizer_config
    assert cfg.task.train_data.num_examples > 0
    assert trainer.train_epochs > 0
    assert trainer.checkpoint_interval_epochs > 0
    assert opt.learning_rate.decay_epochs > 0
    got = (
        trainer.train_steps,
        trainer.checkpoint_interval,
        trainer.validation_interval,
        opt.warmup.warmup_steps,
        opt.learning_rate.params["decay_steps"],
    )
    assert got == STEPS[name]
    # The factory's config is already resolved.
    resolved = cfg.copy()
    durations.resolve(resolved)
    assert resolved.as_dict() == cfg.as_dict()


@pytest.mark.parametrize("name", PUBLISHED)
def test_docstring_says_accuracy_is_published(name):
    doc = " ".join(EXPERIMENTS.get(name).__doc__.lower().split())
    assert "published" in doc and "not reproduced here" in doc
