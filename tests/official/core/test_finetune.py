"""trainer.finetune: freezing, learning-rate multipliers, layer decay, unfreezing, LoRA.

The train loop runs on hand-built `TrainState`s (as in test_train_step.py);
updates are compared with SGD steps computed in numpy, and Adam's with a
Keras Adam whose learning rate carries the multiplier.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from official.core import finetune, lora, variable_paths
from official.core.experiment_config import ExperimentConfig
from official.core.finetune_config import FinetuneConfig, LoRAConfig
from official.core.train_step import TrainState, build_train_loop
from official.modeling.layers.fused_batch_normalization import (
    FusedBatchNormalization,
)
from official.modeling.optimization import optimizers

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(8, 4)).astype("float32")
_Y = _RNG.normal(size=(8, 2)).astype("float32")
_LR = 0.1


class _MeanSquaredError:
    def build_losses(self, labels, outputs, aux_losses=None):
        return tf.reduce_mean(tf.square(outputs - labels))

    def update_metrics(self, metrics, labels, outputs):
        pass


def _mlp(seed=1):
    """4 -> body (Dense 3) -> norm (BN) -> head (Dense 2), fixed weights."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="body")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def _parallel():
    """y = a(x) + b(x): two linear layers whose updates can be told apart."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((4,))
    a = keras.layers.Dense(2, name="a")(inputs)
    b = keras.layers.Dense(2, name="b")(inputs)
    return keras.Model(inputs, keras.layers.Add()([a, b]))


def _state(model, config, optimizer, strategy=None, jit_compile=False):
    setup = finetune.apply(model, config)
    optimizer.build(model.trainable_variables)

    def counter(name):
        return tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name=name,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    state = TrainState(
        model=model,
        optimizer=optimizer,
        task=_MeanSquaredError(),
        strategy=strategy or tf.distribute.get_strategy(),
        global_step=counter("global_step"),
        skipped_steps=counter("skipped_steps"),
        train_loss=keras.metrics.Mean("loss"),
        update_multipliers=setup.multipliers,
        jit_compile=jit_compile,
    )
    return state, setup


def _loop(state, x=_X, y=_Y):
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    iterator = iter(dataset)
    loop = build_train_loop(state)
    return lambda steps: loop(iterator, tf.constant(steps, tf.int32))


def _values(model):
    return {
        p: v.numpy().copy() for p, v in variable_paths.variable_paths(model).items()
    }


# ---- freezing ----------------------------------------------------------------


def test_frozen_variables_and_batch_norm_statistics_do_not_change():
    model = _mlp()
    config = FinetuneConfig(freeze_patterns=["^body/", "^norm/"])
    optimizer = optimizers.SGD(learning_rate=_LR, momentum=0.9, weight_decay=0.1)
    state, setup = _state(model, config, optimizer)
    assert setup.inference_batch_norms == ("norm",)
    assert [v.path for v in model.trainable_variables] == ["head/kernel", "head/bias"]
    assert setup.trainable_parameters == 3 * 2 + 2
    assert setup.total_parameters == 4 * 3 + 3 + 4 * 3 + 3 * 2 + 2
    before = _values(model)
    _loop(state)(3)
    after = _values(model)
    for path in before:
        if path.startswith("head/"):
            assert not np.allclose(before[path], after[path]), path
        else:
            np.testing.assert_array_equal(before[path], after[path], err_msg=path)


def test_a_frozen_fused_batch_norm_uses_its_moving_statistics():
    norm = FusedBatchNormalization()
    x = _RNG.normal(3.0, 2.0, size=(4, 3, 3, 5)).astype("float32")  # fused path
    norm.build(x.shape)
    norm.moving_mean.assign(np.full(5, 0.5, "float32"))
    norm.moving_variance.assign(np.full(5, 4.0, "float32"))
    norm.trainable = False
    training = norm(x, training=True)
    inference = norm(x, training=False)
    np.testing.assert_allclose(training, inference, rtol=1e-6)
    np.testing.assert_allclose(
        inference, (x - 0.5) / np.sqrt(4.0 + norm.epsilon), rtol=1e-5
    )
    np.testing.assert_array_equal(norm.moving_mean.numpy(), np.full(5, 0.5))


def test_a_pattern_that_matches_nothing_names_some_paths():
    with pytest.raises(
        ValueError, match=r"'\^backbone/' matches no variable.*body/kernel"
    ):
        finetune.apply(_mlp(), FinetuneConfig(freeze_patterns=["^backbone/"]))


def test_config_checks():
    for bad, message in [
        (FinetuneConfig(freeze_patterns=["("]), "not a valid regular expression"),
        (FinetuneConfig(lr_multipliers={"head": -1.0}), "must be >= 0"),
        (FinetuneConfig(layer_decay_rate=1.5), r"in \(0, 1\]"),
        (FinetuneConfig(unfreeze_patterns=["body"]), "go together"),
        (FinetuneConfig(layer_decay_block_pattern="block"), "capture"),
        (FinetuneConfig(lora=LoRAConfig(target_patterns=["head"])), "rank > 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            bad.validate("trainer.finetune")
    config = ExperimentConfig()
    config.override_dotted(
        {
            "trainer.finetune.lr_multipliers": "{'^head/': 10}",
            "trainer.finetune.lora.rank": "4",
        }
    )
    config.validate()
    assert config.trainer.finetune.lr_multipliers == {"^head/": 10}
    assert config.trainer.finetune.active


# ---- learning-rate multipliers -------------------------------------------------


def _grads(model, x=_X, y=_Y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    variables = model.trainable_variables
    return {
        v.path: g.numpy() for v, g in zip(variables, tape.gradient(loss, variables))
    }


@pytest.mark.parametrize("jit_compile", [False, True])
def test_sgd_momentum_with_multipliers_is_the_hand_computed_update(jit_compile):
    model = _parallel()
    config = FinetuneConfig(lr_multipliers={"^a/": 10.0, "^b/bias": 0.5})
    optimizer = optimizers.SGD(learning_rate=_LR, momentum=0.9)
    state, setup = _state(model, config, optimizer, jit_compile=jit_compile)
    mult = {"a/kernel": 10.0, "a/bias": 10.0, "b/kernel": 1.0, "b/bias": 0.5}
    assert dict(
        zip([v.path for v in setup.multipliers.variables], setup.multipliers.values)
    ) == {
        "a/kernel": 10.0,
        "a/bias": 10.0,
        "b/bias": 0.5,
    }
    reference = _parallel()
    weights = {v.path: v.numpy() for v in reference.weights}
    momentum = {p: np.zeros_like(w) for p, w in weights.items()}
    run = _loop(state)
    for _ in range(3):
        grads = _grads(reference)
        for p in weights:
            momentum[p] = 0.9 * momentum[p] - _LR * mult[p] * grads[p]
            weights[p] = weights[p] + momentum[p]
        for v in reference.weights:
            v.assign(weights[v.path])
        run(1)
    for v in model.weights:
        np.testing.assert_allclose(v.numpy(), weights[v.path], rtol=1e-5, atol=1e-6)


def test_multipliers_and_unfreezing_under_two_replicas_match_one_device():
    from official.core import distribute

    config = FinetuneConfig(
        lr_multipliers={"^a/": 10.0},
        unfreeze_patterns=["^b/kernel"],
        unfreeze_at_step=1,
    )
    results = []
    for strategy in (
        tf.distribute.get_strategy(),
        distribute.get_strategy("mirrored", num_devices=2),
    ):
        with strategy.scope():
            model = _parallel()
            optimizer = optimizers.SGD(learning_rate=_LR, momentum=0.9)
            state, _ = _state(model, config, optimizer, strategy)
        # One global batch of 8, split over the replicas.
        dataset = tf.data.Dataset.from_tensors((_X, _Y)).repeat()
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        build_train_loop(state)(iterator, tf.constant(3, tf.int32))
        results.append([v.numpy() for v in model.weights])
    for one, two in zip(*results):
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_with_a_multiplier_equals_adam_with_that_learning_rate(name):
    cls = {"adam": optimizers.Adam, "adamw": optimizers.AdamW}[name]
    extra = {"weight_decay": 0.05} if name == "adamw" else {}
    model = _parallel()
    state, _ = _state(
        model,
        FinetuneConfig(lr_multipliers={"^a/": 3.0}),
        cls(learning_rate=0.01, **extra),
    )
    # The reference: one optimizer per group, the learning rate times 3 for `a`.
    reference = _parallel()
    groups = {
        3.0: [v for v in reference.trainable_variables if v.path.startswith("a/")],
        1.0: [v for v in reference.trainable_variables if v.path.startswith("b/")],
    }
    opts = {k: cls(learning_rate=0.01 * k, **extra) for k in groups}
    run = _loop(state)
    for _ in range(3):
        grads = _grads(reference)
        for k, variables in groups.items():
            opts[k].apply([grads[v.path] for v in variables], variables)
        run(1)
    for got, want in zip(model.weights, reference.weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def _tiny_vit():
    from official.vision.backbones.vit import ViT
    from official.vision.models.image_classifier import ImageClassifier

    keras.utils.set_random_seed(3)
    backbone = ViT(
        patch_size=4,
        hidden_size=8,
        num_layers=2,
        num_heads=2,
        mlp_dim=16,
        input_shape=(8, 8, 3),
    )
    return ImageClassifier(backbone, num_classes=3)


def test_layer_wise_decay_multiplies_each_update_as_configured():
    model = _tiny_vit()
    rate = 0.5
    config = FinetuneConfig(layer_decay_rate=rate, lr_multipliers={"^head/": 10.0})
    state, setup = _state(model, config, optimizers.SGD(learning_rate=_LR))
    mult = dict(
        zip([id(v) for v in setup.multipliers.variables], setup.multipliers.values)
    )
    paths = variable_paths.variable_paths(model)
    expected = {}
    for p, v in paths.items():
        if not v.trainable:
            continue
        if p.startswith("backbone/block1/"):
            expected[p] = rate**2
        elif p.startswith("backbone/block2/"):
            expected[p] = rate
        elif p.startswith(
            (
                "backbone/patch_embedding/",
                "backbone/class_token/",
                "backbone/position_embedding/",
            )
        ):
            expected[p] = rate**3
        elif p.startswith("head/"):
            expected[p] = 10.0
        else:
            assert p.startswith("backbone/encoder_norm/"), p
            expected[p] = 1.0
        assert mult.get(id(v), 1.0) == pytest.approx(expected[p]), p
    assert any(p.startswith("backbone/class_token/") for p in expected)
    x = _RNG.normal(size=(4, 8, 8, 3)).astype("float32")
    y = _RNG.normal(size=(4, 3)).astype("float32")
    before = {p: paths[p].numpy().copy() for p in expected}
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, [paths[p] for p in expected])
    _loop(state, x, y)(1)
    for (p, m), g in zip(expected.items(), grads):
        want = before[p] - _LR * m * tf.convert_to_tensor(g).numpy()
        np.testing.assert_allclose(
            paths[p].numpy(), want, rtol=1e-5, atol=1e-7, err_msg=p
        )


# ---- gradual unfreezing --------------------------------------------------------


def test_unfrozen_variables_wait_until_the_step_then_train():
    model = _mlp()
    config = FinetuneConfig(unfreeze_patterns=["^body/"], unfreeze_at_step=2)
    optimizer = optimizers.SGD(learning_rate=_LR, momentum=0.9, weight_decay=0.1)
    state, _ = _state(model, config, optimizer)
    run = _loop(state)
    start = _values(model)
    run(2)
    after_two = _values(model)
    np.testing.assert_array_equal(after_two["body/kernel"], start["body/kernel"])
    np.testing.assert_array_equal(after_two["body/bias"], start["body/bias"])
    assert not np.allclose(after_two["head/kernel"], start["head/kernel"])
    run(1)
    assert not np.allclose(_values(model)["body/kernel"], start["body/kernel"])


# ---- LoRA ------------------------------------------------------------------------


def _conv_net(seed=4):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = FusedBatchNormalization(name="norm")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


_LORA = FinetuneConfig(lora=LoRAConfig(rank=2, alpha=4.0))
_IMAGES = _RNG.normal(size=(8, 6, 6, 3)).astype("float32")


def _train_lora(steps=3):
    model = _conv_net()
    state, setup = _state(model, _LORA, optimizers.Adam(learning_rate=0.05))
    before = _values(model)
    _loop(state, _IMAGES, _Y)(steps)
    return model, setup, before


def test_lora_trains_only_the_adapters():
    model, setup, before = _train_lora()
    assert setup.lora_layers == ("conv", "head")
    assert sorted(v.path for v in model.trainable_variables) == sorted(
        p for p in before if lora.is_adapter(p)
    )
    assert setup.inference_batch_norms == ("norm",)
    after = _values(model)
    for path in before:
        if lora.is_adapter(path) and path.endswith("_b"):
            assert not np.allclose(before[path], after[path]), path
        elif not lora.is_adapter(path):
            np.testing.assert_array_equal(before[path], after[path], err_msg=path)


def test_lora_adapter_file_round_trips_onto_a_fresh_base(tmp_path):
    model, _, _ = _train_lora()
    path = lora.save_adapters(model, str(tmp_path / lora.ADAPTERS_FILE), {"rank": 2})
    arrays, metadata = lora.read_adapters(path)
    assert metadata == {"rank": 2}
    assert sorted(arrays) == sorted(lora.adapter_variables(model))
    assert os.path.getsize(path) < 4096
    fresh = _conv_net()  # the same base weights
    finetune.apply(fresh, _LORA, log=False)
    assert not np.allclose(fresh(_IMAGES), model(_IMAGES))
    lora.load_adapters(fresh, path)
    np.testing.assert_allclose(fresh(_IMAGES), model(_IMAGES), rtol=1e-6)
    other = _conv_net()
    finetune.apply(other, FinetuneConfig(lora=LoRAConfig(rank=3)), log=False)
    with pytest.raises(ValueError, match="another rank"):
        lora.load_adapters(other, path)


def test_merge_keeps_the_outputs_and_drops_the_adapter_matmul():
    model, _, _ = _train_lora()
    adapted = model(_IMAGES).numpy()
    head = model.get_layer("head")
    expected = head._kernel.numpy() + 2.0 * (
        head.lora_kernel_a.numpy() @ head.lora_kernel_b.numpy()
    )
    assert lora.merge(model) == 2
    assert not head.lora_enabled
    np.testing.assert_allclose(head.kernel.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model(_IMAGES), adapted, rtol=1e-5, atol=1e-6)


# ---- export --------------------------------------------------------------------


def _lora_checkpoint(tmp_path):
    """FakeTask's model with trained-looking adapters, checkpointed as the trainer does."""
    from tests.serving.test_export import FakeTask, set_trained_weights

    model = FakeTask().build_model()
    set_trained_weights(model)
    finetune.apply(model, _LORA, log=False)
    rng = np.random.default_rng(7)
    for variable in lora.adapter_variables(model).values():
        variable.assign(rng.normal(0.0, 0.3, variable.shape).astype("float32"))
    model_dir = str(tmp_path / "run")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, 1).save()
    return FakeTask, model, model_dir


def test_the_export_merges_lora_and_matches_the_adapted_model(tmp_path):
    from serving import export
    from tests.serving.test_export import make_examples

    task_cls, model, model_dir = _lora_checkpoint(tmp_path)
    images, _ = make_examples(6, seed=3)
    adapted = model(images.astype(np.float32) / 255.0).numpy()
    config = ExperimentConfig()
    config.trainer.finetune = _LORA
    export_dir = str(tmp_path / "export")
    report = export.export_task(
        task_cls(),
        model_dir,
        export_dir,
        formats=("saved_model",),
        num_parity_examples=6,
        config=config,
    )
    assert report["parity"]
    loaded = tf.saved_model.load(os.path.join(export_dir, "saved_model"))
    out = loaded.signatures["image_tensor"](images=tf.constant(images))
    np.testing.assert_allclose(out["logits"].numpy(), adapted, rtol=1e-5, atol=1e-5)
    # Without the run's LoRA config the adapters would be dropped: refused.
    with pytest.raises(ValueError, match="holds LoRA adapters"):
        export.export_task(
            task_cls(), model_dir, str(tmp_path / "bare"), formats=("saved_model",)
        )


# ---- through the trainer -----------------------------------------------------------


def test_trainer_runs_lora_logs_parameters_and_writes_the_adapters(
    digits_dir, tmp_path, caplog
):
    from official.core import task_factory
    from official.core.config_loader import load_experiment_config
    from official.core.trainer import Trainer

    cfg = load_experiment_config(
        "resnet_digits",
        params_override={
            "task.train_data.input_path": os.path.join(digits_dir, "train-*"),
            "task.train_data.global_batch_size": 16,
            "task.model.backbone.params.width_multiplier": 0.125,
            "trainer.optimizer_config.reference_batch_size": 0,
            "trainer.train_steps": 2,
            "trainer.steps_per_loop": 2,
            "trainer.checkpoint_interval": 2,
            "trainer.validation_interval": 0,
            "trainer.finetune.lora.rank": 2,
            "trainer.finetune.lora.trainable_patterns": "['^head/']",
        },
    )
    model_dir = str(tmp_path / "lora")
    with caplog.at_level("INFO", logger="absl"):
        trainer = Trainer(
            cfg,
            task_factory.get_task(cfg.task),
            model_dir,
            tf.distribute.get_strategy(),
        )
    setup = trainer.finetune
    assert any(
        f"{setup.trainable_parameters:,} trainable of {setup.total_parameters:,}"
        in r.getMessage()
        for r in caplog.records
    )
    trainable = {id(v) for v in trainer.model.trainable_variables}
    paths = variable_paths.variable_paths(trainer.model)
    assert not any(lora.is_adapter(p) for p in paths if p.startswith("head/"))
    assert {p for p, v in paths.items() if id(v) in trainable} == {
        p for p in paths if lora.is_adapter(p) or p.startswith("head/")
    }
    frozen = {
        p: v.numpy().copy() for p, v in paths.items() if p.startswith("backbone/")
    }
    frozen = {p: w for p, w in frozen.items() if not lora.is_adapter(p)}
    trainer.train(trainer.distribute_inputs(cfg.task.train_data))
    for p, w in frozen.items():
        np.testing.assert_array_equal(paths[p].numpy(), w, err_msg=p)
    arrays, metadata = lora.read_adapters(os.path.join(model_dir, lora.ADAPTERS_FILE))
    assert metadata["step"] == 2 and metadata["rank"] == 2
    assert sorted(arrays) == sorted(lora.adapter_variables(trainer.model))


def test_the_readme_yaml_is_a_valid_config():
    import re as re_lib
    from pathlib import Path

    from official.base.config import load_yaml

    text = (Path(__file__).parents[3] / "README.md").read_text()
    section = text.split("### Fine-tuning controls", 1)[1]
    block = re_lib.search(r"```yaml\n(.*?)```", section, re_lib.S).group(1)
    config = ExperimentConfig()
    config.override(load_yaml(block, "README"))
    config.trainer.finetune.validate("trainer.finetune")
    assert config.trainer.finetune.unfreeze_at_step == 500
    # Its patterns fit a ViT classifier.
    setup = finetune.apply(_tiny_vit(), config.trainer.finetune, log=False)
    assert setup.frozen and set(setup.multipliers.start_steps) == {0, 500}


def test_init_checkpoint_of_a_base_model_loads_under_lora(tmp_path):
    from official.core import checkpoints

    base = _conv_net(seed=9)
    prefix = tf.train.Checkpoint(model=base).save(str(tmp_path / "base" / "ckpt"))
    model = _conv_net(seed=4)
    finetune.apply(model, _LORA, log=False)
    report = checkpoints.initialize_from_checkpoint(model, prefix, "all")
    assert sorted(report.missing) == sorted(lora.adapter_variables(model))
    # b starts at zero: the adapted model computes the base model.
    np.testing.assert_allclose(model(_IMAGES), base(_IMAGES), rtol=1e-5, atol=1e-6)
