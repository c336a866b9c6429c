"""Garden: a TensorFlow / Keras 3 model garden with an export pipeline."""

from setuptools import find_packages, setup

setup(
    name="garden",
    version="0.1.0",
    description="Keras 3 model garden: training binaries, verified exports, a layer library.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["official", "official.*", "serving", "serving.*"]),
    # The built-in weights manifest (official/core/model_store.py).
    package_data={"official.core": ["model_manifest.json"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",  # official/modeling/optimization/optimizers.py
        "keras>=3.15,<3.16",  # uses private hooks checked with these versions.
        "absl-py",
        "PyYAML",
        "numpy",
        "tensorflow-datasets",
        "importlib_resources",  # tensorflow-datasets needs it at import time.
        "tensorboard",  # tf.summary writes through it.
        "ai-edge-litert",
        "scikit-learn",  # ships the embedded digits data.
        "Pillow",  # the converters read and check image files with it.
        "tqdm",  # the converters' progress bars.
    ],
    extras_require={
        # jax: the layer and backbone tests also run on the JAX backend
        # (checked with jax 0.10.2 and keras 3.15).
        # ruff is pinned exactly: `make test` checks formatting, and another
        # release may format differently.
        # pytest-xdist runs the suite in worker processes (`make test`): most
        # of a test's time is single-threaded Python (tracing, conversion),
        # so two workers on two cores took 293 s where one took 535 s.
        "dev": ["pytest", "pytest-xdist>=3.6", "jax[cpu]>=0.10", "ruff==0.17.6"],
        # The model server's gRPC API: TF Serving's own protos, so existing
        # TF Serving clients work unchanged.
        # httptools (llhttp, uvicorn's parser) parses REST requests: strict
        # framing (no smuggling) at ~3 us a request where h11 took ~190 us
        # (~30 % fewer requests/s at 4-8 clients); the same requests/s and
        # server CPU per request (~0.6 ms) as the old hand-written parser.
        "serving": [
            "tensorflow-serving-api>=2.21,<3",
            "grpcio>=1.24.3,<2",
            "httptools>=0.6,<1",
        ],
        # COCO polygon and RLE masks (tools/convert_coco.py); without it a
        # Pillow rasterizer stands in.
        "coco": ["pycocotools>=2.0.6"],
        # tools/plot_curves.py draws with it.
        "tools": ["matplotlib"],
        # serving.export --formats=...,onnx: tf2onnx converts, onnx checks the
        # file, onnxruntime runs it for parity. Tried with TF 2.21, numpy 2.4,
        # protobuf 7: tf2onnx 1.17.0, onnx 1.23.2, onnxruntime 1.32.0.
        "onnx": ["tf2onnx>=1.17,<2", "onnx>=1.17", "onnxruntime>=1.20"],
        # Text tasks: WordPiece tokenization inside the graph. Its ops are
        # compiled against one TensorFlow minor version, so it is pinned to
        # the same minor as `tensorflow` above.
        "nlp": ["tensorflow-text>=2.21,<2.22"],
        # keras-hub preset directories (importers of BERT and vision presets).
        # Tried with keras-hub 0.32.0 on Keras 3.15 and TensorFlow 2.21.
        "hub": ["keras-hub>=0.32,<0.33"],
        # Causal-LM fine-tuning runs keras-hub models with their tokenizers;
        # jinja2 reads Hugging Face chat templates (Jinja source).
        "llm": [
            "keras-hub>=0.32,<0.33",
            "tensorflow-text>=2.21,<2.22",
            "jinja2>=3.1,<4",
        ],
    },
    entry_points={
        "console_scripts": [
            "garden-train=official.train:run",
            "garden-export=serving.export:run",
            "garden-serve=serving.server:run",
        ]
    },
)
