"""EMA, the non-finite guard, SIGTERM, exact resume, init_checkpoint, precision."""

import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.core import checkpoints, task_factory
from official.core.config_loader import load_experiment_config
from official.core.train_lib import run_experiment
from official.core.trainer import Preempted, Trainer
from official.vision.tasks.image_classification import ImageClassificationTask


def _config(digits_dir, **extra):
    items = {
        "task.train_data.input_path": os.path.join(digits_dir, "train-*"),
        "task.validation_data.input_path": os.path.join(digits_dir, "validation-*"),
        "task.train_data.global_batch_size": 16,
        "task.validation_data.global_batch_size": 180,
        "task.model.backbone.params.width_multiplier": 0.125,
        "trainer.optimizer_config.reference_batch_size": 0,
        "trainer.train_steps": 2,
        "trainer.steps_per_loop": 2,
        "trainer.checkpoint_interval": 2,
        "trainer.validation_interval": 0,
        "trainer.validation_steps": 1,
    }
    items.update(extra)
    return load_experiment_config("resnet_digits", params_override=items)


def _weights(path, cfg):
    model = task_factory.get_task(cfg.task).build_model()
    checkpoints.restore_model(model, path)
    return [v.numpy() for v in model.trainable_variables]


def test_ema_is_checkpointed_and_used_by_restore(digits_dir, tmp_path):
    cfg = _config(digits_dir, **{"trainer.ema_decay": 0.5})
    model_dir = str(tmp_path / "ema")
    run_experiment(cfg, "train", model_dir)
    prefix = tf.train.latest_checkpoint(model_dir)
    names = [n for n, _ in tf.train.list_variables(prefix)]
    assert any(n.startswith("ema/averages/") for n in names)
    reader = tf.train.load_checkpoint(prefix)
    restored = _weights(prefix, cfg)
    averages = [
        reader.get_tensor(f"ema/averages/{i}/.ATTRIBUTES/VARIABLE_VALUE")
        for i in range(len(restored))
    ]
    for got, want in zip(restored, averages):
        np.testing.assert_array_equal(got, want)


def test_ema_arithmetic():
    from official.modeling.ema import ExponentialMovingAverage

    v = tf.Variable([0.0, 2.0])
    ema = ExponentialMovingAverage([v], decay=0.75)
    v.assign([4.0, 2.0])
    ema.update()
    np.testing.assert_allclose(ema.averages[0].numpy(), [1.0, 2.0])
    with ema.swapped():
        np.testing.assert_allclose(v.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(v.numpy(), [4.0, 2.0])


def _poison(monkeypatch, when):
    original = ImageClassificationTask.build_losses

    def build_losses(self, labels, outputs, aux_losses=None):
        loss = original(self, labels, outputs, aux_losses)
        return tf.where(when(labels), tf.constant(float("nan")), loss)

    monkeypatch.setattr(ImageClassificationTask, "build_losses", build_losses)


def test_nonfinite_stop_names_step_and_keeps_last_checkpoint(
    digits_dir, tmp_path, monkeypatch
):
    model_dir = str(tmp_path / "nan")
    run_experiment(_config(digits_dir), "train", model_dir)
    _poison(monkeypatch, lambda labels: tf.constant(True))
    with pytest.raises(FloatingPointError) as e:
        run_experiment(
            _config(digits_dir, **{"trainer.train_steps": 4}), "train", model_dir
        )
    assert "at step 4" in str(e.value) and "ckpt-2" in str(e.value)
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")


def test_nonfinite_skip_drops_only_bad_steps(digits_dir, tmp_path, monkeypatch):
    _poison(monkeypatch, lambda labels: tf.equal(labels[0] % 2, 0))
    cfg = _config(
        digits_dir,
        **{
            "trainer.nonfinite_policy": "skip",
            "trainer.train_steps": 8,
            "trainer.steps_per_loop": 8,
            "trainer.checkpoint_interval": 8,
        },
    )
    model_dir = str(tmp_path / "skip")
    run_experiment(cfg, "train", model_dir)
    prefix = tf.train.latest_checkpoint(model_dir)
    reader = tf.train.load_checkpoint(prefix)
    skipped = int(reader.get_tensor("skipped_steps/.ATTRIBUTES/VARIABLE_VALUE"))
    assert 0 < skipped < 8
    assert all(np.isfinite(w).all() for w in _weights(prefix, cfg))


def test_sigterm_saves_and_resumes(digits_dir, tmp_path, monkeypatch):
    cfg = _config(
        digits_dir, **{"trainer.train_steps": 6, "trainer.checkpoint_interval": 6}
    )
    model_dir = str(tmp_path / "term")
    original = Trainer._run_loop

    def run_loop(self, *args):
        step = original(self, *args)
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return step

    monkeypatch.setattr(Trainer, "_run_loop", run_loop)
    with pytest.raises(Preempted, match="step 2"):
        run_experiment(cfg, "train", model_dir)
    # Saved off-interval because of the signal, and the handler was restored.
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    monkeypatch.setattr(Trainer, "_run_loop", original)
    run_experiment(cfg, "train", model_dir)
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-6")


def test_init_checkpoint_report(digits_dir, tmp_path, caplog):
    source = str(tmp_path / "source")
    run_experiment(_config(digits_dir), "train", source)

    cfg = _config(
        digits_dir,
        **{
            "trainer.init_checkpoint": source,
            "trainer.init_checkpoint_modules": "backbone",
            "trainer.train_steps": 1,
            "trainer.steps_per_loop": 1,
            "trainer.checkpoint_interval": 1,
        },
    )
    trainer = Trainer(
        cfg,
        task_factory.get_task(cfg.task),
        str(tmp_path / "t"),
        tf.distribute.get_strategy(),
    )
    head_before = [v.numpy() for v in trainer.model.head.trainable_variables]
    report = trainer.initialize_from(source, "backbone")
    assert len(report.matched) == len(trainer.model.backbone.variables)
    assert report.missing == []
    source_model = task_factory.get_task(cfg.task).build_model()
    checkpoints.restore_model(source_model, source)
    for got, want in zip(trainer.model.backbone.weights, source_model.backbone.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(trainer.model.head.trainable_variables, head_before):
        np.testing.assert_array_equal(got.numpy(), want)
    assert "variables matched" in report.summary()

    # A head of another size does not fit "all": the error says what to do.
    other = _config(digits_dir, **{"task.model.num_classes": 12})
    trainer = Trainer(
        other,
        task_factory.get_task(other.task),
        str(tmp_path / "u"),
        tf.distribute.get_strategy(),
    )
    with pytest.raises(ValueError, match="init_checkpoint_modules=backbone"):
        trainer.initialize_from(source, "all")

    # A checkpoint with nothing in common is refused.
    unrelated = tf.train.Checkpoint(v=tf.Variable(1.0)).save(
        str(tmp_path / "x" / "ckpt")
    )
    with pytest.raises(ValueError, match="Nothing in checkpoint"):
        trainer.initialize_from(unrelated, "all")


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains(digits_dir, tmp_path, dtype):
    cfg = _config(digits_dir, **{"runtime.mixed_precision_dtype": dtype})
    try:
        logs = run_experiment(cfg, "train_and_eval", str(tmp_path / dtype))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(logs["loss"])


def test_jit_compile_trains(digits_dir, tmp_path):
    cfg = _config(digits_dir, **{"trainer.jit_compile": True})
    logs = run_experiment(cfg, "train_and_eval", str(tmp_path / "xla"))
    assert np.isfinite(logs["loss"])


def test_learning_rate_follows_batch_size():
    cfg = load_experiment_config(
        "resnet_imagenet",
        params_override="task.train_data.global_batch_size=8,"
        "task.train_data.input_path=a,task.validation_data.input_path=b",
    )
    from official.modeling.optimization import optimizer_factory

    opt = cfg.trainer.optimizer_config
    scaled = optimizer_factory.scale_learning_rate(opt, 8)
    assert scaled.learning_rate.params["initial_learning_rate"] == pytest.approx(
        1.6 * 8 / 4096
    )
    assert (
        opt.learning_rate.params["initial_learning_rate"] == 1.6
    )  # not changed in place
    opt.reference_batch_size = 0
    assert optimizer_factory.scale_learning_rate(opt, 8) is opt


def _binary(digits_dir, model_dir):
    overrides = ",".join(
        [
            f"task.train_data.input_path={digits_dir}/train-*",
            f"task.validation_data.input_path={digits_dir}/validation-*",
            "task.train_data.global_batch_size=16",
            "task.model.backbone.params.width_multiplier=0.125",
            "runtime.seed=3",
            "runtime.deterministic=true",
            "trainer.train_steps=12",
            "trainer.steps_per_loop=1",
            "trainer.checkpoint_interval=2",
            "trainer.validation_interval=0",
        ]
    )
    return [
        sys.executable,
        "-m",
        "official.train",
        "--experiment=resnet_digits",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--params_override={overrides}",
    ]


@pytest.mark.slow  # two training processes, ~30 s on 2 cores
def test_sigkill_and_resume_ends_with_identical_weights(digits_dir, tmp_path):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    subprocess.run(
        _binary(digits_dir, straight), check=True, capture_output=True, timeout=300
    )

    process = subprocess.Popen(
        _binary(digits_dir, killed), stderr=subprocess.PIPE, text=True
    )
    for line in process.stderr:
        if "Saved checkpoint" in line and "ckpt-4" in line:
            break
    process.kill()  # SIGKILL, somewhere after step 4
    process.wait()
    assert not os.path.exists(os.path.join(killed, "ckpt-12.index"))
    subprocess.run(
        _binary(digits_dir, killed), check=True, capture_output=True, timeout=300
    )

    cfg = _config(digits_dir)
    weights = []
    for model_dir in (straight, killed):
        assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-12")
        model = task_factory.get_task(cfg.task).build_model()
        checkpoints.restore_model(model, model_dir)
        weights.append([v.numpy() for v in model.weights])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_hooks_order_and_stop(digits_dir, tmp_path):
    from official.core import hooks

    events = []

    class Recorder(hooks.Hook):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_loop_end(self, step, logs):
            events.append(f"loop_end:{step}")
            if step == 3:
                self.trainer.stop_training = True

        def on_eval_end(self, step, logs):
            events.append(f"eval_end:{step}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    cfg = _config(
        digits_dir,
        **{
            "trainer.train_steps": 10,
            "trainer.steps_per_loop": 1,
            "trainer.checkpoint_interval": 5,
            "trainer.validation_interval": 1,
            "trainer.best_checkpoint_metric": "accuracy",
        },
    )
    model_dir = str(tmp_path / "hooks")
    trainer = Trainer(
        cfg,
        task_factory.get_task(cfg.task),
        model_dir,
        tf.distribute.get_strategy(),
        hooks=[Recorder()],
    )
    trainer.train(
        trainer.distribute_inputs(cfg.task.train_data),
        trainer.distribute_inputs(cfg.task.validation_data),
    )
    assert events == [
        "train_begin",
        "loop_end:1",
        "eval_end:1",
        "loop_end:2",
        "eval_end:2",
        "loop_end:3",
        "eval_end:3",
        "train_end",
    ]
    # A stop off the checkpoint interval still saves the last step.
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-3")
    assert os.path.exists(os.path.join(model_dir, "best", "best.json"))


def test_early_stopping_and_best_checkpoint_hooks(tmp_path):
    import json
    import types

    from official.core import hooks

    trainer = types.SimpleNamespace(
        model_dir=str(tmp_path),
        stop_training=False,
        checkpoint=tf.train.Checkpoint(v=tf.Variable(0.0)),
    )
    stopper = hooks.EarlyStopping("accuracy", patience=2)
    best = hooks.BestCheckpoint("loss", mode="min")
    for hook in (stopper, best):
        hook.trainer = trainer
    best.on_train_begin()
    for step, (accuracy, loss) in enumerate(
        [(0.5, 2.0), (0.6, 1.0), (0.55, 1.5), (0.6, 3.0)], 1
    ):
        trainer.checkpoint.v.assign(float(step))
        for hook in (stopper, best):
            hook.on_eval_end(step, {"accuracy": accuracy, "loss": loss})
        if step < 4:
            assert not trainer.stop_training
    assert trainer.stop_training  # 0.55 and 0.6 do not beat 0.6
    with open(tmp_path / "best" / "best.json") as f:
        record = json.load(f)
    assert record["step"] == 2 and record["loss"] == 1.0
    assert (
        float(
            tf.train.load_checkpoint(record["checkpoint"]).get_tensor(
                "v/.ATTRIBUTES/VARIABLE_VALUE"
            )
        )
        == 2.0
    )
    with pytest.raises(KeyError, match="Evaluation reports: accuracy, loss"):
        hooks.EarlyStopping("top_1", 1).on_eval_end(1, {"accuracy": 1.0, "loss": 0.0})


def test_hook_config_errors():
    with pytest.raises(ValueError, match="profile_steps must be"):
        load_experiment_config(
            "resnet_digits", params_override="trainer.profile_steps=[5, 2]"
        )
    with pytest.raises(ValueError, match="best_checkpoint_mode must be"):
        load_experiment_config(
            "resnet_digits", params_override="trainer.best_checkpoint_mode=up"
        )


@pytest.mark.slow  # end to end, ~10 s on 2 cores
def test_continuous_eval_evaluates_new_checkpoints_until_train_steps(
    digits_dir, tmp_path
):
    import json

    model_dir = str(tmp_path / "ce")
    run_experiment(_config(digits_dir), "train", model_dir)  # ckpt-2
    cfg4 = _config(digits_dir, **{"trainer.train_steps": 4})
    # Only step 2 exists: evaluated once, then the wait times out.
    logs = run_experiment(cfg4, "continuous_eval", model_dir, continuous_eval_timeout=2)
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        assert json.load(f)["step"] == 2
    assert "accuracy" in logs
    run_experiment(cfg4, "train", model_dir)  # ckpt-4 == train_steps
    run_experiment(cfg4, "continuous_eval", model_dir, continuous_eval_timeout=600)
    with open(os.path.join(model_dir, "eval_results.json")) as f:
        assert json.load(f)["step"] == 4  # and it returned without waiting


def test_an_empty_batch_evaluates_as_nothing(digits_dir, tmp_path):
    # A worker whose evaluation shard ran out steps on an empty batch; with
    # oneDNN a convolution network fails on one unless the trainer pads it.
    cfg = _config(
        digits_dir,
        **{
            "trainer.validation_steps": -1,
            "task.validation_data.global_batch_size": 64,
        },
    )
    trainer = Trainer(
        cfg,
        task_factory.get_task(cfg.task),
        str(tmp_path / "t"),
        tf.distribute.get_strategy(),
    )
    batches = list(trainer.task.build_inputs(cfg.task.validation_data).take(2))
    batches[1] = (batches[1][0][:10], batches[1][1][:10])  # a last partial batch
    images, labels = batches[0]
    empty = (images[:0], labels[:0])

    def evaluate(parts):
        return trainer.evaluate(iter(parts))

    alone = evaluate(batches)
    with_empty = evaluate([batches[0], empty, batches[1]])
    assert with_empty == pytest.approx(alone, abs=1e-6)
    # The loss is the mean over examples, not over batches.
    sizes = [int(b[1].shape[0]) for b in batches]
    per_batch = [evaluate([b])["loss"] for b in batches]
    assert alone["loss"] == pytest.approx(
        sum(s * v for s, v in zip(sizes, per_batch)) / sum(sizes), rel=1e-5
    )
