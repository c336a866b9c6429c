"""tools/publish_weights.py and the store end to end: train, publish, serve, reuse.

The README section "Pretrained weights" runs as written (slow): its URL is
served by a local HTTP server through `GARDEN_MIRROR`.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from official.core import checkpoints, model_download, model_store, task_factory
from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment
from official.core.trainer import Trainer
from official.testing.file_server import FileServer
from tools import publish_weights

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAME = "resnet_digits.tiny"


def _config(digits_dir, **extra):
    items = {
        "task.train_data.input_path": os.path.join(digits_dir, "train-*"),
        "task.validation_data.input_path": os.path.join(digits_dir, "validation-*"),
        "task.train_data.global_batch_size": 16,
        "task.validation_data.global_batch_size": 180,
        "task.model.backbone.params.width_multiplier": 0.125,
        "trainer.optimizer_config.reference_batch_size": 0,
        "trainer.train_steps": 2,
        "trainer.steps_per_loop": 1,
        "trainer.checkpoint_interval": 2,
        "trainer.validation_interval": 0,
        "trainer.validation_steps": 1,
    }
    items.update(extra)
    return load_experiment_config("resnet_digits", params_override=items)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(model_store.HOME_ENV, str(tmp_path / "home"))
    for env in (model_store.MANIFESTS_ENV, "GARDEN_OFFLINE", "GARDEN_MIRROR"):
        monkeypatch.delenv(env, raising=False)
    return tmp_path / "home"


@pytest.mark.slow  # end to end, ~10 s on 2 cores
def test_publish_serve_and_initialize_by_name(digits_dir, tmp_path, home, capsys):
    source = str(tmp_path / "source")
    cfg = _config(digits_dir, **{"trainer.ema_decay": 0.5})
    run_experiment(cfg, "train", source, experiment="resnet_digits")

    with FileServer() as server:
        out = str(tmp_path / "published")
        argv = [
            "publish_weights",
            f"--checkpoint_path={source}",
            f"--name={NAME}",
            f"--output_dir={out}",
            f"--url_prefix={server.url('garden')}",
            "--license=CC0-1.0; trained on the embedded digits data",
        ]
        assert publish_weights.main(argv) == 0
        printed = capsys.readouterr().out
        manifest = os.path.join(out, "manifest.json")
        (entry,) = model_store.load_manifest(manifest)
        archive = os.path.join(out, f"{NAME}.tar")
        assert entry.sha256 == model_download.file_sha256(archive)
        assert entry.size == os.path.getsize(archive)
        assert entry.url == server.url(f"garden/{NAME}.tar")
        assert entry.experiment == "resnet_digits"
        assert entry.config["task"]["model"]["backbone"]["params"] == {
            "model_id": 10,
            "width_multiplier": 0.125,
        }
        assert json.loads(printed[: printed.rindex("}") + 1])["name"] == NAME
        # Publishing the same name again is refused, before any work.
        assert publish_weights.main(argv) == 1
        assert "already lists weights" in capsys.readouterr().err

        with open(archive, "rb") as f:
            server.files[f"garden/{NAME}.tar"] = f.read()
        fresh = _config(
            digits_dir,
            **{
                "trainer.init_checkpoint": f"store:{NAME}",
                "trainer.init_checkpoint_manifests": [manifest],
            },
        )
        # The training run fetches the weights and starts from them.
        run_experiment(fresh, "train", str(tmp_path / "fine_tuned"))
        assert len(server.requests) == 1
        trainer = Trainer(
            fresh,
            task_factory.get_task(fresh.task),
            str(tmp_path / "t"),
            tf.distribute.get_strategy(),
        )
        report = trainer.initialize_from(fresh.trainer.init_checkpoint, "all")
        assert len(server.requests) == 1  # From the cache.
    floats = [v for v in trainer.model.variables if v.dtype.startswith("float")]
    assert len(report.matched) == len(floats) and report.missing == []
    assert report.checkpoint.startswith(str(home))
    # Equal to the published weights: the source run's (moving averages).
    published = task_factory.get_task(cfg.task).build_model()
    checkpoints.restore_model(published, source)
    for got, want in zip(trainer.model.weights, published.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())

    # The backbone alone restores into a model with another head.
    other = _config(
        digits_dir,
        **{
            "task.model.num_classes": 12,
            "trainer.init_checkpoint_manifests": [manifest],
        },
    )
    trainer = Trainer(
        other,
        task_factory.get_task(other.task),
        str(tmp_path / "u"),
        tf.distribute.get_strategy(),
    )
    report = trainer.initialize_from(f"store:{NAME}", "backbone")
    assert report.missing == []
    assert len(report.matched) == len(trainer.model.backbone.variables)


def test_relative_url_and_bad_flags(digits_dir, tmp_path, home, capsys):
    source = str(tmp_path / "source")
    run_experiment(_config(digits_dir), "train", source, experiment="resnet_digits")
    out = str(tmp_path / "pub")
    result = publish_weights.publish(source, "tiny.v0", out, "MIT")
    assert result["entry"]["url"] == "tiny.v0.tar"  # Beside the manifest.
    prefix = model_store.fetch_weights("tiny.v0", [result["manifest"]])
    names = [n for n, _ in tf.train.list_variables(prefix)]
    assert any(n.startswith("model/") for n in names)
    assert not any(n.startswith(("optimizer", "ema", "step")) for n in names)

    base = [f"--checkpoint_path={source}", f"--output_dir={out}"]
    assert publish_weights.main(["p", *base, "--license=MIT"]) == 2
    assert "--name is required" in capsys.readouterr().err
    assert publish_weights.main(["p", *base, "--name=a b", "--license=MIT"]) == 1
    assert "name must be letters" in capsys.readouterr().err


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("### Pretrained weights")
    ends = [text.find(h, start + 1) for h in ("\n## ", "\n### ")]
    end = min([i for i in ends if i > 0] or [len(text)])
    return re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)


@pytest.mark.slow
def test_readme_pretrained_weights(digits_dir, tmp_path):
    """The section's commands as written, after a short resnet_digits run."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "tools").symlink_to(ROOT / "tools")
    (work / "data").mkdir()
    (work / "data" / "digits").symlink_to(digits_dir)
    cfg = load_experiment_config(
        "resnet_digits",
        params_override={
            "task.train_data.input_path": "data/digits/train-*",
            "task.validation_data.input_path": "data/digits/validation-*",
            "trainer.train_steps": 2,
            "trainer.steps_per_loop": 1,
            "trainer.checkpoint_interval": 2,
            "trainer.validation_interval": 0,
        },
    )
    cwd = os.getcwd()
    os.chdir(work)
    try:
        run_experiment(cfg, "train", "runs/digits", experiment="resnet_digits")
    finally:
        os.chdir(cwd)
    blocks = readme_blocks()
    assert len(blocks) == 2, blocks
    with FileServer() as server:
        env = dict(os.environ)
        env.pop(model_store.MANIFESTS_ENV, None)
        env.update(
            PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
            PYTHONPATH=str(ROOT),
            GARDEN_HOME=str(tmp_path / "home"),
            GARDEN_MIRROR=f"https://weights.example.com/garden={server.url('garden')}",
        )
        outputs = []
        for i, block in enumerate(blocks):
            if i == 1:
                for path in (work / "published").glob("*.tar"):
                    server.files[f"garden/{path.name}"] = path.read_bytes()
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert result.returncode == 0, (block, result.stdout, result.stderr[-6000:])
            outputs.append(result.stdout + result.stderr)
        assert [p for p, _ in server.requests] == ["garden/resnet_digits.demo.tar"]
    match = re.search(r"(\d+)/(\d+) variables matched", outputs[1])
    assert match and match.group(1) == match.group(2), outputs[1][-3000:]
    assert (work / "runs" / "digits_finetuned" / "eval_results.json").exists()
