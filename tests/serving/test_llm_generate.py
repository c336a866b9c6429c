"""The model server answers REST and gRPC `generate` requests of a causal LM
(and REST `generate_chat` requests: whole conversations).

The SavedModel comes from `CausalLMTask.serving_signatures` (what
tools/export_llm.py writes) for a tiny GPT-2 with a byte-level tokenizer; the
server (which never imports `official`) loads it like any other model. Its
tokenizer ops come from keras-hub / tensorflow-text, loaded in this process.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

from serving import model_config
from serving.server import ModelServer, grpc_available
from tests.serving.tiny_model import call, predict

pytestmark = pytest.mark.slow

PROMPTS = ["What is 2+2?", "Hi"]
# Whole conversations for `generate_chat` (the second is one turn shorter).
CHATS = [
    (["system", "user", "assistant", "user"], ["Be brief.", "2+2?", "4", "And 3+3?"]),
    (["user", "assistant", "user"], ["Hi", "Hello", "What is 1+1?"]),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    from official.llm.tasks.causal_lm import CausalLMTask
    from serving import saved_model_export
    from tests.official.llm import llm_testing

    root = tmp_path_factory.mktemp("llm")
    keras.utils.set_random_seed(0)
    task = CausalLMTask(llm_testing.task_config(root))
    model = task.build_model()
    path = str(root / "models" / "llm" / "1")
    saved_model_export.write_saved_model(
        model, task.serving_signatures(model), path, default="generate"
    )
    generator = task.generator(model)
    tokens, lengths = generator.complete_ids(
        [(["user"], [p]) for p in PROMPTS], max_new_tokens=4
    )
    texts = generator.text_bytes(tokens, lengths)
    chat = generator.complete_ids(CHATS, max_new_tokens=4)
    return str(root / "models" / "llm"), tokens, lengths, texts, chat


def _text(value) -> bytes:
    """A JSON string output: TF Serving sends bytes that are not UTF-8 as b64."""
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    return value.encode("utf-8")


def test_rest_generate_request(exported):
    base_path, tokens, lengths, texts, chat = exported
    grpc_port = 0 if grpc_available() else None
    with ModelServer(
        [model_config.ModelConfig("llm", base_path)],
        rest_api_port=0,
        grpc_port=grpc_port,
    ) as server:
        status, meta = call(server.rest_port, "GET", "/v1/models/llm/metadata")
        assert status == 200, meta
        inputs = meta["metadata"]["signature_def"]["signature_def"]["generate"][
            "inputs"
        ]
        assert set(inputs) == {
            "prompts",
            "max_new_tokens",
            "temperature",
            "top_k",
            "seed",
        }
        body = {
            "signature_name": "generate",
            "instances": [
                {
                    "prompts": p,
                    "max_new_tokens": 4,
                    "temperature": 0.0,
                    "top_k": 0,
                    "seed": 0,
                }
                for p in PROMPTS
            ],
        }
        status, out = predict(server.rest_port, body, model="llm")
        assert status == 200, out
        rows = out["predictions"]
        for row, want, n, text in zip(rows, tokens, lengths, texts):
            assert row["num_tokens"] == int(n)
            assert row["token_ids"][: int(n)] == np.asarray(want)[: int(n)].tolist()
            assert _text(row["completions"]) == text
        # Sampling settings travel per prompt: top_k=1 is greedy again.
        body["instances"][0].update(temperature=0.8, top_k=1, seed=5)
        status, again = predict(server.rest_port, body, model="llm")
        assert status == 200, again
        assert again["predictions"][0]["token_ids"] == rows[0]["token_ids"]
        _check_chat(server.rest_port, chat)
        if grpc_port is not None:
            _check_grpc(server.grpc_port, tokens, lengths)


def _check_chat(port, chat):
    """`generate_chat` over REST: conversations padded with role "" to the
    same number of turns give the evaluation's greedy tokens."""
    turns = max(len(roles) for roles, _ in CHATS)
    instances = [
        {
            "roles": roles + [""] * (turns - len(roles)),
            "contents": contents + [""] * (turns - len(contents)),
            "max_new_tokens": 4,
            "temperature": 0.0,
            "top_k": 0,
            "seed": 0,
        }
        for roles, contents in CHATS
    ]
    body = {"signature_name": "generate_chat", "instances": instances}
    status, out = predict(port, body, model="llm")
    assert status == 200, out
    want_tokens, want_lengths = chat
    for row, want, n in zip(out["predictions"], want_tokens, want_lengths):
        assert row["num_tokens"] == int(n)
        assert row["token_ids"][: int(n)] == np.asarray(want)[: int(n)].tolist()


def _check_grpc(port, tokens, lengths):
    """The same greedy request through TF Serving's gRPC Predict."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    n = len(PROMPTS)
    inputs = {
        "prompts": np.asarray(PROMPTS, dtype=object),
        "max_new_tokens": np.full([n], 4, np.int32),
        "temperature": np.zeros([n], np.float32),
        "top_k": np.zeros([n], np.int32),
        "seed": np.zeros([n], np.int32),
    }
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "llm"
    request.model_spec.signature_name = "generate"
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=60)
    got = tf.make_ndarray(response.outputs["token_ids"])
    got_lengths = tf.make_ndarray(response.outputs["num_tokens"])
    assert got_lengths.tolist() == np.asarray(lengths).tolist()
    for row, want, n_tokens in zip(got, tokens, lengths):
        assert row[:n_tokens].tolist() == np.asarray(want)[:n_tokens].tolist()
