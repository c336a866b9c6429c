"""Every YAML file in configs/ loads onto the experiment its command names."""

import pathlib
import re

import pytest

from official.core.config_loader import load_experiment_config
from official.core.durations import epochs_to_steps

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "configs").rglob("*.yaml"))


def test_there_are_config_files():
    assert FILES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_config_file_loads_with_its_experiment(path):
    text = path.read_text()
    match = re.search(r"--experiment=(\w+)", text)
    assert match, f"{path} must name the command that runs it (--experiment=...)"
    assert f"--config_file=configs/{path.relative_to(ROOT / 'configs')}" in text
    cfg = load_experiment_config(
        match.group(1),
        [str(path)],
        "task.train_data.input_path=a,task.validation_data.input_path=b",
    )
    assert cfg.trainer.train_steps > 0
    # Recipes state epochs of a known training split; steps follow the batch.
    assert cfg.trainer.train_epochs > 0
    assert cfg.task.train_data.num_examples > 0
    assert cfg.trainer.train_steps == epochs_to_steps(
        cfg.trainer.train_epochs,
        cfg.task.train_data.num_examples,
        cfg.task.train_data.global_batch_size,
    )
