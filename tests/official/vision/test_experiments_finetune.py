"""The fine-tuning recipes: valid configs whose patterns fit the real models."""

import keras
import pytest

from official.base.config import ConfigError
from official.base.registries import EXPERIMENTS
from official.core import exp_factory, finetune, lora, variable_paths
from official.core.config_loader import load_experiment_config
from official.vision.experiments_finetune import FinetuneExperimentConfig

RECIPES = [
    "resnet50_imagenet_finetune",
    "vit_b16_imagenet_finetune",
    "vit_b16_imagenet_lora",
]
DATA = {"task.train_data.input_path": "a", "task.validation_data.input_path": "b"}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates_with_weights_and_refuses_without(name):
    cfg = load_experiment_config(
        name, params_override={**DATA, "trainer.init_checkpoint": "store:w"}
    )
    assert isinstance(cfg, FinetuneExperimentConfig)
    assert cfg.trainer.init_checkpoint_modules == "backbone"
    # Full fine-tuning of the ViT changes nothing of trainer.finetune.
    assert cfg.trainer.finetune.active == (name != "vit_b16_imagenet_finetune")
    assert cfg.trainer.train_epochs > 0
    assert cfg.task.train_data.num_examples > 0
    # params.yaml of a run loads back onto the recipe.
    again = load_experiment_config(name, params_override=cfg.as_dict())
    assert again.as_dict() == cfg.as_dict()
    with pytest.raises(ConfigError, match="trainer.init_checkpoint.*store:NAME"):
        load_experiment_config(name, params_override=DATA)


@pytest.mark.parametrize("name", RECIPES)
def test_docstring_names_its_command_and_published_status(name):
    doc = " ".join(EXPERIMENTS.get(name).__doc__.split())
    assert f"--experiment={name}" in doc
    assert "trainer.init_checkpoint=store:NAME" in doc
    assert "published" in doc and "reproduced here" in doc


def _model(name, backbone_params, input_size):
    from official.core import task_factory

    params = exp_factory.get_exp_config(name)
    params.task.model.input_size = input_size
    params.task.model.num_classes = 3
    params.task.model.backbone.params.update(backbone_params)
    keras.utils.set_random_seed(0)
    return params, task_factory.get_task(params.task).build_model()


def test_resnet_recipe_freezes_exactly_the_batch_norms_of_a_tiny_resnet():
    params, model = _model(
        "resnet50_imagenet_finetune",
        {"model_id": 10, "width_multiplier": 0.25},
        [32, 32, 3],
    )
    paths = variable_paths.variable_paths(model)
    setup = finetune.apply(model, params.trainer.finetune, log=False)
    norms = [
        layer
        for layer in variable_paths.all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    norm_variables = {id(v) for layer in norms for v in layer.weights}
    assert norms and set(setup.inference_batch_norms) == {n.name for n in norms}
    assert {id(paths[p]) for p in setup.frozen} == norm_variables
    # Everything else (convolutions, head) trains.
    trainable = {id(v) for v in model.trainable_variables}
    for p, v in paths.items():
        assert (id(v) in trainable) == (id(v) not in norm_variables), p


def test_lora_recipe_adapts_attention_and_mlp_of_a_tiny_vit_and_trains_the_head():
    params, model = _model(
        "vit_b16_imagenet_lora",
        {
            "patch_size": 8,
            "hidden_size": 8,
            "num_layers": 2,
            "num_heads": 2,
            "mlp_dim": 16,
        },
        [16, 16, 3],
    )
    setup = finetune.apply(model, params.trainer.finetune, log=False)
    paths = variable_paths.variable_paths(model)
    adapted = {p.rsplit("/", 1)[0] for p in paths if lora.is_adapter(p)}
    expected = {
        f"backbone/block{b}/{layer}"
        for b in (1, 2)
        for layer in (
            "attention/query",
            "attention/key",
            "attention/value",
            "mlp_dense1",
            "mlp_dense2",
        )
    }
    assert expected <= adapted, sorted(adapted)
    # Attention's output projection is adapted too, under whatever name.
    assert len([p for p in adapted if "/attention/" in p]) == 2 * 4
    assert len(setup.lora_layers) == 2 * 6
    trainable = {variable_paths.path_of(model, v) for v in model.trainable_variables}
    head = {p for p in paths if p.startswith("head/")}
    assert head and head <= trainable
    assert trainable - head == {p for p in paths if lora.is_adapter(p)}
