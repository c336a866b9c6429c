"""tools/model_summary.py: parameter and FLOP counts, the command line."""

import importlib.util
import pathlib

import keras
import pytest
import tensorflow as tf

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "model_summary_tool", ROOT / "tools" / "model_summary.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def _model(layers, input_shape):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "layers, input_shape, macs",
    [
        ([keras.layers.Dense(4)], (8,), 8 * 4),
        ([keras.layers.Dense(4)], (5, 8), 5 * 8 * 4),  # BatchMatMul / MatMul on 3-D
        ([keras.layers.Conv2D(6, 3, padding="same")], (8, 8, 4), 8 * 8 * 6 * 3 * 3 * 4),
        ([keras.layers.Conv2D(6, 3, strides=2)], (9, 9, 4), 4 * 4 * 6 * 3 * 3 * 4),
        (
            [keras.layers.DepthwiseConv2D(3, padding="same")],
            (8, 8, 4),
            8 * 8 * 4 * 3 * 3,
        ),
        (
            [keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same")],
            (4, 4, 5),
            4 * 4 * 5 * 3 * 3 * 6,
        ),
        (
            [keras.layers.EinsumDense("abc,cd->abd", output_shape=(5, 7))],
            (5, 3),
            5 * 3 * 7,
        ),
        ([keras.layers.BatchNormalization(), keras.layers.ReLU()], (4, 4, 2), 0),
    ],
)
def test_flops_of_single_layers(tool, layers, input_shape, macs):
    model = _model(layers, input_shape)
    assert tool.count_flops(model, input_shape) == 2 * macs


def test_flops_of_attention_match_the_formula(tool):
    """Projections 4 * N * D * D plus scores and mixing 2 * N * N * D."""
    n, d = 6, 8
    inputs = keras.Input(shape=(n, d))
    outputs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=d // 2)(
        inputs, inputs
    )
    model = keras.Model(inputs, outputs)
    assert tool.count_flops(model, (n, d)) == 2 * (4 * n * d * d + 2 * n * n * d)


def test_flops_inside_nested_tf_functions_are_counted(tool):
    kernel = tf.ones((8, 4))

    @tf.function
    def inner(x):
        return tf.matmul(x, kernel)

    class Wrapped:
        def __call__(self, x, training=False):
            return inner(x)

    assert tool.count_flops(Wrapped(), (8,)) == 2 * 8 * 4


def test_flops_need_a_static_input(tool):
    model = _model([keras.layers.Conv2D(2, 3)], (None, None, 3))
    with pytest.raises(ValueError, match="dynamic shape"):
        tool.count_flops(model, (None, None, 3))


def test_summarize_counts_trainable_and_non_trainable(tool):
    model = _model(
        [keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()], (6, 6, 2)
    )
    summary = tool.summarize(model, (6, 6, 2))
    assert summary["trainable_params"] == 3 * 3 * 2 * 4 + 4 + 2 * 4
    assert summary["non_trainable_params"] == 2 * 4
    assert summary["total_params"] == model.count_params()
    assert summary["flops"] == 2 * 4 * 4 * 4 * 3 * 3 * 2


def test_vit_flops_match_the_formula(tool):
    from official.vision.backbones.vit import ViT

    d, layers, m, p, size = 16, 2, 32, 8, 32
    backbone = ViT(
        model_id="ti16",
        patch_size=p,
        hidden_size=d,
        num_layers=layers,
        num_heads=2,
        mlp_dim=m,
        input_shape=(size, size, 3),
    )
    patches = (size // p) ** 2
    n = patches + 1
    macs = patches * p * p * 3 * d + layers * (
        n * (4 * d * d + 2 * d * m) + 2 * n * n * d
    )
    assert tool.count_flops(backbone, (size, size, 3)) == 2 * macs


def test_resnet50_is_4_1_gmacs(tool):
    """The standard figure for ResNet-50 at 224 px (backbone, no classifier)."""
    model = tool.build_backbone("resnet", {"model_id": 50}, (224, 224, 3))
    summary = tool.summarize(model, (224, 224, 3))
    assert (
        summary["trainable_params"] == 23_508_032
    )  # 25,557,032 less the 1000-class fc
    assert 4.05e9 < summary["flops"] / 2 < 4.15e9


def _main(tool, capsys, *args):
    code = tool.main(["model_summary", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_main_backbone(tool, capsys):
    code, out, _ = _main(
        tool,
        capsys,
        "--backbone=resnet",
        '--params={"model_id": 10, "width_multiplier": 0.125}',
        "--input_size=32",
    )
    assert code == 0
    model = tool.build_backbone(
        "resnet", {"model_id": 10, "width_multiplier": 0.125}, (32, 32, 3)
    )
    assert "at 32x32x3" in out
    assert f"total parameters: {model.count_params():>23,}" in out
    assert "FLOPs per image:" in out and "G multiply-adds" in out


def test_main_experiment(tool, capsys):
    code, out, err = _main(
        tool,
        capsys,
        "--experiment=resnet_digits",
        "--params_override=task.model.backbone.params.width_multiplier=0.125",
        "--input_size=16",
    )
    assert code == 0, err
    assert "experiment resnet_digits (ImageClassifier) at 16x16x3" in out
    assert "trainable parameters:" in out


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([], 2, "set exactly one of --backbone and --experiment"),
        (["--backbone=resnet", "--experiment=resnet_digits"], 2, "exactly one"),
        (["--backbone=resnt"], 1, "Did you mean 'resnet'?"),
        (["--backbone=resnet", "--params=[50]"], 1, "--params must be a mapping"),
        (
            ["--backbone=resnet", "--params={model_idd: 50}"],
            1,
            "Did you mean 'model_id'?",
        ),
        (["--backbone=resnet", "--params_override=a=1"], 1, "apply to --experiment"),
        (["--experiment=resnet_digits", "--params={}"], 1, "applies to --backbone"),
        (["--experiment=nope"], 1, "Unknown experiment 'nope'"),
        (["--input_size=abc"], 2, "input_size"),
    ],
)
def test_main_errors(tool, capsys, args, code, message):
    got, _, err = _main(tool, capsys, *args)
    assert got == code, err
    assert message in err


def test_text_experiment_counts_keras_hubs_bert_tiny(tool, capsys, tmp_path):
    # BERT's uncased vocabulary size; keras-hub's bert_tiny_en_uncased backbone
    # has 4,385,920 trainable parameters, and the classifier adds 128 x 2 + 2.
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"w{i}" for i in range(30522 - len(vocab))]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    code, out, err = _main(
        tool,
        capsys,
        "--experiment=bert_sentence_prediction",
        f"--params_override=task.preprocessing.vocab_file={tmp_path / 'vocab.txt'},"
        "task.model.encoder.params.size=tiny,task.preprocessing.seq_length=16",
    )
    assert code == 0, err
    assert "at 16 tokens" in out
    assert f"trainable parameters: {4_385_920 + 258:>19,}" in out
    assert "FLOPs per example:" in out
