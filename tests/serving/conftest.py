"""Fixtures of the model server tests: the tiny SavedModel and running servers.

One server (models "tiny" and "hot", REST and gRPC on ports the OS picks on
127.0.0.1) serves most tests of the session; `token_server` adds bearer-token
auth. The model and the HTTP helpers are in `tests/serving/tiny_model.py`.
"""

import shutil

import pytest
import tensorflow as tf

from serving import model_config
from serving.server import ModelServer, grpc_available
from tests.serving.tiny_model import make_images, write_tiny_saved_model


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tiny") / "saved_model")
    write_tiny_saved_model(path)
    return path


@pytest.fixture(scope="session")
def model_root(tmp_path_factory, saved_model):
    """Base paths `tiny` and `hot`, each with version 1 (tests add to `hot`)."""
    root = tmp_path_factory.mktemp("models")
    for name in ("tiny", "hot"):
        shutil.copytree(saved_model, root / name / "1")
    return root


@pytest.fixture(scope="session")
def server(model_root):
    models = [
        model_config.ModelConfig(
            "tiny", str(model_root / "tiny"), version_labels=(("stable", 1),)
        ),
        model_config.ModelConfig("hot", str(model_root / "hot")),
    ]
    grpc_port = 0 if grpc_available() else None
    with ModelServer(
        models,
        rest_api_port=0,
        grpc_port=grpc_port,
        max_body_bytes=300_000,
        file_system_poll_wait_seconds=0.2,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def token_server(model_root):
    grpc_port = 0 if grpc_available() else None
    with ModelServer(
        [model_config.ModelConfig("tiny", str(model_root / "tiny"))],
        rest_api_port=0,
        grpc_port=grpc_port,
        auth_token="s3cret",
        file_system_poll_wait_seconds=0,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def expected(saved_model):
    """`(images, labels, outputs)`: the SavedModel called directly on 4 images."""
    images, labels = make_images(4)
    out = tf.saved_model.load(saved_model).signatures["image_tensor"](
        images=tf.constant(images)
    )
    return images, labels, {key: value.numpy() for key, value in out.items()}
