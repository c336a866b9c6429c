"""A tiny SavedModel for the server tests, and HTTP helpers to call a server.

The SavedModel mimics the real export (signatures image_tensor = serving_default,
image_bytes, tf_example; outputs logits, probabilities, classes) without
training: hand-set weights make the class the brightest channel.
"""

import http.client
import json
import os
import socket
import time

import keras
import numpy as np
import tensorflow as tf

CLASSES = ("red", "green", "blue")
OUTPUTS = ("classes", "logits", "probabilities")
# One black 8x8 image, as a request's `instances`.
IMAGE = np.zeros((1, 8, 8, 3), np.uint8).tolist()


def make_images(n, size=8, seed=0):
    """uint8 noise with channel `i % 3` brightened: the label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 100, (n, size, size, 3))
    images[np.arange(n), :, :, labels] += 120
    return images.astype(np.uint8), labels


def png(image):
    return tf.io.encode_png(image).numpy()


def write_tiny_saved_model(path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    model.get_layer("head").set_weights([10 * np.eye(3, dtype=np.float32), np.zeros(3)])

    def outputs(images):
        logits = model(tf.image.resize(tf.cast(images, tf.float32), (8, 8)) / 255.0)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "classes": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }

    def image_bytes(image_bytes):
        decode = lambda data: tf.cast(tf.io.decode_png(data, channels=3), tf.float32)  # noqa: E731
        return outputs(tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32))

    def tf_example(examples):
        spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
        return image_bytes(tf.io.parse_example(examples, spec)["image/encoded"])

    archive = keras.export.ExportArchive()
    archive.track(model)
    image_spec = [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]
    for name, fn, spec in [
        ("serving_default", outputs, image_spec),
        ("image_tensor", outputs, image_spec),
        (
            "image_bytes",
            image_bytes,
            [tf.TensorSpec([None], tf.string, name="image_bytes")],
        ),
        ("tf_example", tf_example, [tf.TensorSpec([None], tf.string, name="examples")]),
    ]:
        archive.add_endpoint(name, fn, input_signature=spec)
    archive.write_out(path, verbose=False)
    with open(os.path.join(path, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")


# ---- HTTP helpers --------------------------------------------------------------------


def call(port, method, path, body=None, headers=None):
    """One request on a fresh connection: `(status, parsed JSON body)`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def predict(port, body, model="tiny", headers=None):
    return call(port, "POST", f"/v1/models/{model}:predict", body, headers)


def assert_serving(port, expected):
    """The server on `port` still answers a good request correctly."""
    images, labels, _ = expected
    status, out = predict(port, {"instances": images[:2].tolist()})
    assert status == 200, out
    assert [row["classes"] for row in out["predictions"]] == labels[:2].tolist()


def raw_exchange(port, request: bytes) -> bytes:
    """Sends raw bytes; returns all the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(request)
        chunks = []
        while chunk := raw.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def wait_for(condition, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


# ---- a SavedModel as TF Serving's own examples build them ---------------------------

TFS_CLASSES = (b"low", b"high")


def write_tf_serving_style_model(path):
    """TF1 classify and regress SignatureDefs on tf.Examples with a float `x` [2].

    `regress` (also `serving_default`; input `inputs`, output `outputs`
    [batch, 1]) gives 2 * x0 + 3 * x1 + 1; `classify` (outputs `classes`
    (strings) and `scores`) gives softmax([x0, x1]) for classes low, high.
    """
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        x = tf.io.parse_example(
            serialized, {"x": tf.io.FixedLenFeature([2], tf.float32)}
        )["x"]
        value = tf.reduce_sum(x * [2.0, 3.0], axis=1, keepdims=True) + 1.0
        scores = tf.nn.softmax(x)
        classes = tf.tile(tf.constant([list(TFS_CLASSES)]), [tf.shape(x)[0], 1])
        regress = v1.saved_model.regression_signature_def(serialized, value)
        classify = v1.saved_model.classification_signature_def(
            serialized, classes, scores
        )
        builder = v1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": regress,
                "regress": regress,
                "classify": classify,
            },
        )
        builder.save()
