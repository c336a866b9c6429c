"""tools/benchmark_train.py: train-step throughput and share of the matmul peak."""

import importlib.util
import json
import pathlib

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = "task.model.backbone.params.width_multiplier=0.125"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "benchmark_train_tool", ROOT / "tools" / "benchmark_train.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    keras.backend.clear_session()


def test_benchmark_of_a_tiny_resnet(tool):
    result = tool.benchmark(
        "resnet_digits",
        params_override=TINY,
        global_batch_size=8,
        image_size=16,
        num_loops=2,
        steps_per_loop=2,
        matmul_size=256,
    )
    assert result["input_size"] == [16, 16, 3]
    assert len(result["loop_seconds"]) == 3  # warm-up + 2 timed
    assert result["examples_per_second"] > 0
    assert result["step_seconds"] == pytest.approx(8 / result["examples_per_second"])
    assert len(result["loop_examples_per_second"]) == 2
    assert result["train_flops_per_example"] == 3 * result["forward_flops_per_example"]
    # The forward count is tools/model_summary.py's, on the same model.
    from official.core import task_factory

    config = tool.load_config("resnet_digits", params_override=TINY, image_size=16)
    model = task_factory.get_task(config.task).build_model()
    summary = tool._model_summary_module().summarize(model, (16, 16, 3))
    assert result["forward_flops_per_example"] == summary["flops"] > 0
    assert result["trainable_parameters"] == summary["trainable_params"]
    # Any machine that runs TensorFlow does 0.1 to 10^6 GFLOP/s in float32.
    assert 0.1 < result["matmul_peak_gflops"] < 1e6
    assert result["peak_share"] == pytest.approx(
        result["achieved_gflops"] / result["matmul_peak_gflops"]
    )
    assert 0 < result["peak_share"] < 1.5
    table = tool.format_table(result)
    assert "examples/s" in table and "share of peak" in table
    json.dumps(result)  # --output_json writes it as is
    assert keras.mixed_precision.global_policy().name == "float32"


def test_synthetic_input_matches_the_training_format(tool):
    import tensorflow as tf

    config = tool.load_config("resnet_digits", global_batch_size=6, image_size=16)
    dataset = tool.synthetic_dataset_fn(config)(
        tf.distribute.InputContext(num_input_pipelines=1, num_replicas_in_sync=2)
    )
    images, labels = next(iter(dataset))
    assert images.shape == (3, 16, 16, 3) and images.dtype == tf.float32
    assert labels.shape == (3,) and labels.dtype == tf.int32
    assert 0 <= int(tf.reduce_min(labels)) and int(tf.reduce_max(labels)) < 10


def test_load_config_sets_the_loops(tool):
    config = tool.load_config(
        "resnet_digits",
        params_override="trainer.steps_per_loop=99",
        global_batch_size=12,
        num_loops=3,
        steps_per_loop=4,
    )
    assert config.task.train_data.global_batch_size == 12
    assert config.trainer.steps_per_loop == 4
    assert config.trainer.train_steps == 16  # warm-up loop + 3 timed
    assert config.task.model.input_size == [32, 32, 3]  # the experiment's own


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([], 2, "--experiment is required"),
        (["--experiment=resnet_digit"], 1, "Did you mean 'resnet_digits'?"),
        (["--experiment=resnet_digits", "--num_loops=0"], 1, "--num_loops must be > 0"),
        (["--experiment=resnet_digits", "--image_size=-1"], 1, "--image_size must be"),
        (["--experiment=resnet_digits", "--params_override=task.nope=1"], 1, "nope"),
        (["--experiment=resnet_digits", "--steps_per_loop=x"], 2, "steps_per_loop"),
    ],
)
def test_main_errors(tool, capsys, args, code, message):
    assert tool.main(["benchmark_train", *args]) == code
    assert message in capsys.readouterr().err


def test_result_names_the_cpu_and_the_cpu_time_per_step(tool):
    result = tool.benchmark(
        "resnet_digits",
        params_override=TINY,
        global_batch_size=4,
        image_size=16,
        num_loops=1,
        steps_per_loop=2,
        matmul_size=128,
    )
    host = result["host"]
    assert host["cpu_model"] and host["cores"] >= 1
    assert set(host["cpu_features"]) <= {
        "AVX2",
        "AVX-512",
        "VNNI",
        "AVX512-BF16",
        "AMX-BF16",
    }
    per_step = result["per_step"]
    assert per_step["user_seconds"] > 0 and per_step["system_seconds"] >= 0
    assert per_step["minor_faults"] >= 0 and per_step["major_faults"] >= 0
    assert 0 <= result["system_share"] < 1
    assert result["reference"] is None
    table = tool.format_table(result)
    assert "CPU time per step" in table and host["cpu_model"] in table
    assert "oneDNN" in table and "malloc" in table


@pytest.mark.parametrize(
    "override, message",
    [
        ("task.model.backbone.type=mobilenet", "compares ResNet classifiers"),
        ("runtime.distribution_strategy=mirrored", "runs one device"),
        ("task.train_data.mixup_alpha=0.2", "needs integer labels"),
    ],
)
def test_reference_refuses_what_it_cannot_compare(override, message):
    from official.core import config_loader
    from tools import benchmark_host

    config = config_loader.load_experiment_config(
        "resnet_imagenet", [], config_loader.parse_params_override(override)
    )
    with pytest.raises(ValueError, match=message):
        benchmark_host.reference_spec(config, 2, 5)


def test_reference_spec_matches_the_run(tool):
    from tools import benchmark_host

    config = tool.load_config(
        "resnet_imagenet",
        params_override="task.model.backbone.params.model_id=18",
        global_batch_size=8,
        image_size=32,
    )
    spec = benchmark_host.reference_spec(config, 2, 5)
    assert spec == {
        "family": "classification",
        "experiment": "resnet_imagenet",
        "model_id": 18,
        "input_size": [32, 32, 3],
        "num_classes": config.task.model.num_classes,
        "global_batch_size": 8,
        "mixed_precision_dtype": "float32",
        "num_loops": 2,
        "steps_per_loop": 5,
    }


def test_reference_without_tf_models_official_names_the_python(tmp_path):
    import sys

    import numpy as np

    from tools import benchmark_host

    spec = {"experiment": "resnet_imagenet", "num_loops": 1, "steps_per_loop": 1}
    arrays = {"images": np.zeros((1, 4, 4, 3), np.float32)}
    arrays["labels"] = np.zeros(1, np.int32)
    with pytest.raises(RuntimeError, match="has no tf-models-official installed"):
        benchmark_host.run_reference(spec, arrays, sys.executable)


def test_reference_runs_with_the_users_environment(monkeypatch):
    from official.core import cpu_tuning
    from tools import benchmark_host

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    monkeypatch.setattr(cpu_tuning, "_onednn_set", True)
    assert "TF_ENABLE_ONEDNN_OPTS" not in benchmark_host.reference_environment()
    monkeypatch.setattr(cpu_tuning, "_onednn_set", False)  # the user's own value
    assert benchmark_host.reference_environment()["TF_ENABLE_ONEDNN_OPTS"] == "1"


# ---- detection and text ---------------------------------------------------------

# RetinaNet small enough for a test: ResNet-10 at a quarter width, P3-P5.
TINY_RETINANET = (
    "task.model.backbone.params.model_id=10,"
    "task.model.backbone.params.width_multiplier=0.25,"
    "task.model.max_level=5,task.model.decoder.num_filters=16,"
    "task.model.head.num_filters=16,task.model.head.num_convs=1"
)
TINY_BERT = (
    "task.model.encoder.params.size=tiny,task.model.encoder.params.hidden_size=32,"
    "task.model.encoder.params.num_heads=2,"
    "task.model.encoder.params.intermediate_size=64"
)


def test_detection_batch_gives_both_sides_the_same_boxes(tool):
    from tools import benchmark_families

    config = tool.load_config(
        "retinanet_resnetfpn_coco", global_batch_size=2, image_size=128
    )
    assert config.task.model.input_size == [128, 128, 3]
    assert config.task.model.num_classes == 91
    family = benchmark_families.family_of(config.task)
    arrays = family.arrays(config, 2)
    boxes, classes = arrays["boxes"], arrays["classes"]
    assert arrays["images"].shape == (2, 128, 128, 3)
    assert boxes.shape == (2, benchmark_families.BOXES_PER_IMAGE, 4)
    assert boxes.min() >= 0 and boxes.max() <= 128
    assert (boxes[..., 2:] > boxes[..., :2]).all()
    assert 1 <= classes.min() and classes.max() < 91
    again = family.arrays(config, 2)  # what the reference is handed
    for key in arrays:
        assert (again[key] == arrays[key]).all(), key
    images, labels = family.training_batch(config, arrays)
    anchors = 9 * sum((128 // 2**level) ** 2 for level in range(3, 8))
    assert labels["cls_targets"].shape == (2, anchors)
    assert labels["box_targets"].shape == (2, anchors, 4)
    for row in range(2):
        positive = labels["box_weights"][row].numpy() > 0
        assert positive.any()
        # Every positive anchor is labeled with a class of that image's boxes.
        matched = set(labels["cls_targets"][row].numpy()[positive].tolist())
        assert matched <= set(classes[row].tolist())


def test_text_batch_is_packed_ids_inside_the_vocabulary(tool):
    from tools import benchmark_families

    config = tool.load_config(
        "bert_sentence_prediction", global_batch_size=3, seq_length=16
    )
    assert config.task.preprocessing.seq_length == 16
    with open(config.task.preprocessing.vocab_file) as f:
        tokens = f.read().split()
    assert len(tokens) == benchmark_families.VOCAB_SIZE == 30522
    features, labels = tool.synthetic_batch(config, 3)
    ids, mask = features["input_word_ids"], features["input_mask"]
    assert set(features) == {"input_word_ids", "input_mask", "input_type_ids"}
    for value in features.values():
        assert value.shape == (3, 16) and value.dtype == "int32"
    assert 0 <= ids.min() and ids.max() < len(tokens)
    assert (ids[:, 0] == tokens.index("[CLS]")).all()
    assert ((ids == tokens.index("[PAD]")) == (mask == 0)).all()
    lengths = mask.sum(axis=1)
    assert (ids[range(3), lengths - 1] == tokens.index("[SEP]")).all()
    assert (features["input_type_ids"] == 0).all()
    assert labels.shape == (3,) and set(labels.tolist()) <= {0, 1}


def test_reference_specs_of_detection_and_text(tool):
    from tools import benchmark_host

    config = tool.load_config(
        "retinanet_resnetfpn_coco", global_batch_size=2, image_size=256
    )
    spec = benchmark_host.reference_spec(config, 2, 3)
    assert spec["family"] == "retinanet"
    assert spec["experiment"] == "retinanet_resnetfpn_coco"
    assert spec["model_id"] == 50 and spec["input_size"] == [256, 256, 3]
    assert spec["num_classes"] == 91 and spec["global_batch_size"] == 2
    assert (spec["min_level"], spec["max_level"], spec["num_scales"]) == (3, 7, 3)
    assert spec["box_coder_weights"] is None and spec["box_loss_weight"] == 50
    config = tool.load_config("bert_sentence_prediction", global_batch_size=8)
    spec = benchmark_host.reference_spec(config, 2, 3)
    assert spec["experiment"] == "bert/sentence_prediction"
    assert (spec["vocab_size"], spec["hidden_size"], spec["num_layers"]) == (
        30522,
        768,
        12,
    )
    assert (spec["num_heads"], spec["intermediate_size"]) == (12, 3072)
    assert spec["seq_length"] == 128 and spec["num_classes"] == 2


@pytest.mark.parametrize(
    "experiment, kwargs, message",
    [
        ("bert_sentence_prediction", {"image_size": 64}, "--image_size applies to"),
        ("resnet_digits", {"seq_length": 64}, "--seq_length applies to"),
        ("bert_sentence_prediction", {"seq_length": 0}, "--seq_length must be > 0"),
        ("tiny_lm_arithmetic_pretrain", {}, "RetinaNetTaskConfig"),
    ],
)
def test_load_config_refuses_what_the_family_does_not_take(
    tool, experiment, kwargs, message
):
    with pytest.raises(ValueError, match=message):
        tool.load_config(experiment, **kwargs)


@pytest.mark.parametrize(
    "experiment, override, message",
    [
        (
            "retinanet_resnetfpn_coco",
            "task.model.backbone.params.width_multiplier=0.5",
            "plain ResNet",
        ),
        (
            "bert_sentence_prediction",
            "task.model.num_classes=1,task.label_names=[]",
            "regression",
        ),
    ],
)
def test_reference_refuses_detection_and_text_it_cannot_compare(
    tool, experiment, override, message
):
    from tools import benchmark_host

    config = tool.load_config(experiment, params_override=override)
    with pytest.raises(ValueError, match=message):
        benchmark_host.reference_spec(config, 2, 3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, override, size",
    [
        ("retinanet_resnetfpn_coco", TINY_RETINANET, {"image_size": 64}),
        ("bert_sentence_prediction", TINY_BERT, {"seq_length": 16}),
    ],
)
def test_benchmark_of_a_tiny_detector_and_encoder(tool, experiment, override, size):
    result = tool.benchmark(
        experiment,
        params_override=override,
        global_batch_size=2,
        num_loops=1,
        steps_per_loop=2,
        matmul_size=128,
        **size,
    )
    assert len(result["loop_seconds"]) == 2 and result["examples_per_second"] > 0
    assert all(loss > 0 for loss in result["loop_losses"])
    assert result["forward_flops_per_example"] > 0
    expected = [64, 64, 3] if "image_size" in size else ["tokens", 16]
    assert result["input_size"] == expected
    table = tool.format_table(result)
    assert result["family"] in table and "loss per loop" in table
    json.dumps(result)


def _reference_python() -> str:
    from official.core.model_store import garden_home

    venv = pathlib.Path(garden_home()) / "benchmark" / "tf-models-official-2.20"
    if not (venv / ".garden-reference-ready").exists():
        pytest.skip(f"needs the tf-models-official venv at {venv} (made with pip)")
    return str(venv / "bin" / "python")


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, override, size",
    [
        (
            "retinanet_resnetfpn_coco",
            "task.model.backbone.params.model_id=18,task.model.decoder.num_filters=16,"
            "task.model.head.num_filters=16,task.model.head.num_convs=1",
            {"image_size": 128},
        ),
        ("bert_sentence_prediction", TINY_BERT, {"seq_length": 16}),
    ],
)
def test_reference_trains_detection_and_text_on_the_same_batch(
    tool, experiment, override, size
):
    python = _reference_python()
    result = tool.benchmark(
        experiment,
        params_override=override,
        global_batch_size=2,
        num_loops=1,
        steps_per_loop=2,
        matmul_size=128,
        reference_python=python,
        **size,
    )
    reference = result["reference"]
    assert reference["tf_models_official"] == "2.20.0"
    assert len(reference["loop_seconds"]) == 2
    assert all(loss > 0 for loss in reference["loop_losses"])
    assert reference["ratio"] == pytest.approx(
        result["examples_per_second"] / reference["examples_per_second"]
    )
    assert "Garden / reference" in tool.format_table(result)
