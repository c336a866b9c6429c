"""Models whose variables checkpoints cannot see are refused, not half-saved."""

import keras
import pytest

import official.registry_imports  # noqa: F401
from official.core import checkpoints, exp_factory, task_factory


class _ListHolder(keras.layers.Layer):
    """Keeps two sublayers in a plain list: invisible to tf.train.Checkpoint."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.branches = [keras.layers.Dense(2), keras.layers.Dense(2)]
        self.kept = keras.layers.Dense(2)

    def build(self, input_shape):
        for layer in (*self.branches, self.kept):
            layer.build(input_shape)

    def call(self, x):
        return self.kept(x) + self.branches[0](x) + self.branches[1](x)


def test_list_held_layers_are_named(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, _ListHolder(name="holder")(inputs))
    missing = checkpoints.untracked_variables(model)
    assert len(missing) == 4 and all(p.startswith("holder/dense") for p in missing)
    with pytest.raises(ValueError, match="invisible to checkpoints.*own attribute"):
        checkpoints.check_checkpointable(model)


@pytest.mark.parametrize(
    "experiment",
    [
        "resnet_digits",
        "deeplabv3_shapes",
        "mobilenet_imagenet",
        "efficientnet_imagenet",
        "vit_imagenet",
    ],
)
def test_experiment_models_are_fully_checkpointable(experiment):
    params = exp_factory.get_exp_config(experiment)
    if experiment.endswith("_imagenet"):
        params.task.model.input_size = [32, 32, 3]
        params.task.model.num_classes = 3
        if experiment == "vit_imagenet":
            params.task.model.backbone.params.update(
                {
                    "patch_size": 16,
                    "hidden_size": 8,
                    "num_layers": 1,
                    "num_heads": 2,
                    "mlp_dim": 8,
                }
            )
    model = task_factory.get_task(params.task).build_model()
    assert model.weights
    assert checkpoints.untracked_variables(model) == []
