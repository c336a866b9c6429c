"""tools/benchmark_input.py: both pipelines measured on the same generated files.

`images_per_second` is wrapped to watch what each timed round reads: the
batches (their count and shape) and the time spent in them, so that the
reported rates are checked against the images the rounds really read.
"""

import contextlib
import glob
import importlib.util
import io
import json
import os
import pathlib
import re
import shutil
import statistics
import time

import numpy as np
import pytest
import tensorflow as tf

from official.core.config_loader import load_experiment_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
BATCH, BATCHES, REPEATS, NUM_IMAGES, HEIGHT, WIDTH = 4, 2, 2, 24, 40, 48


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "benchmark_input_tool", ROOT / "tools" / "benchmark_input.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tool, tmp_path_factory):
    """The tool on generated images: `(code, results, stdout, rounds seen)`."""
    rounds = []  # per timed round: batch shapes read, seconds in next(), outcome
    original = tool.images_per_second

    def watched(iterator, batch_size, num_batches):
        seen = {"args": (batch_size, num_batches), "shapes": [], "in_next": 0.0}

        class Watched:
            def __next__(self):
                start = time.perf_counter()
                batch = next(iterator)
                seen["in_next"] += time.perf_counter() - start
                images = batch[0] if isinstance(batch, tuple) else batch
                seen["shapes"].append(tuple(images.shape))
                return batch

        start = time.perf_counter()
        seen["result"] = original(Watched(), batch_size, num_batches)
        seen["outer"] = time.perf_counter() - start
        rounds.append(seen)
        return seen["result"]

    tool.images_per_second = watched
    output = tmp_path_factory.mktemp("benchmark_input") / "results.json"
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = tool.main(
                [
                    "benchmark_input",
                    "--experiment=resnet_digits",
                    f"--num_images={NUM_IMAGES}",
                    f"--image_height={HEIGHT}",
                    f"--image_width={WIDTH}",
                    f"--batch_size={BATCH}",
                    f"--num_batches={BATCHES}",
                    "--warmup_batches=1",
                    f"--repeats={REPEATS}",
                    f"--output_json={output}",
                ]
            )
    finally:
        tool.images_per_second = original
    results = json.loads(output.read_text()) if output.exists() else None
    yield code, results, stdout.getvalue(), rounds
    if results:  # the tool's scratch folder of generated images and records
        scratch = os.path.dirname(os.path.dirname(results["input_path"]))
        if os.path.basename(scratch).startswith("benchmark_input_"):
            shutil.rmtree(scratch)


PIPELINES = ["experiment", "plain", "experiment_image_folder"]


def test_the_report_describes_this_run(run):
    code, results, _, _ = run
    assert code == 0
    input_size = load_experiment_config("resnet_digits").task.model.input_size
    assert results["experiment"] == "resnet_digits"
    assert results["image_size"] == list(input_size[:2]) == [32, 32]
    assert (results["batch_size"], results["num_batches"]) == (BATCH, BATCHES)
    assert list(results["images_per_second"]) == PIPELINES
    assert list(results["cpu_ms_per_image"]) == PIPELINES
    assert {name: len(r) for name, r in results["rounds"].items()} == {
        name: REPEATS for name in PIPELINES
    }


def test_each_round_reads_steps_times_batch_images_at_the_input_size(run):
    _, _, _, rounds = run
    # Pipelines in turn, `--repeats` times: each round times --num_batches
    # batches of --batch_size images at the experiment's input size.
    assert len(rounds) == REPEATS * len(PIPELINES)
    for seen in rounds:
        assert seen["args"] == (BATCH, BATCHES)
        assert seen["shapes"] == [(BATCH, 32, 32, 3)] * BATCHES


def test_the_rates_are_the_images_read_over_the_time_taken(run):
    _, results, _, rounds = run
    images = BATCHES * BATCH
    for index, seen in enumerate(rounds):
        name = PIPELINES[index % len(PIPELINES)]
        rate, cpu_ms = seen["result"]
        # The round's clock runs inside the wrapper and around every next().
        assert images / seen["outer"] <= rate <= images / seen["in_next"]
        assert cpu_ms >= 0
        assert results["rounds"][name][index // len(PIPELINES)] == rate
    for name in PIPELINES:
        assert results["images_per_second"][name] == statistics.median(
            results["rounds"][name]
        )


def test_the_generated_data_follows_the_flags(run):
    _, results, _, _ = run
    shards = sorted(glob.glob(results["input_path"]))
    assert len(shards) == 8
    sizes = []
    for record in tf.data.TFRecordDataset(shards):
        example = tf.train.Example.FromString(record.numpy())
        encoded = example.features.feature["image/encoded"].bytes_list.value[0]
        sizes.append(tf.io.extract_jpeg_shape(encoded).numpy()[:2])
    assert len(sizes) == NUM_IMAGES
    # About --image_height x --image_width (the generator jitters sizes by 15%).
    sizes = np.array(sizes)
    assert np.all(np.abs(sizes - [HEIGHT, WIDTH]) <= 0.2 * np.array([HEIGHT, WIDTH]))


def test_the_printed_summary_matches_the_json(run):
    _, results, out, _ = run
    rates = results["images_per_second"]
    assert f"batch {BATCH} at 32x32" in out
    for name in PIPELINES:
        assert re.search(rf"^  {name} +{rates[name]:.0f} images/s", out, re.M), out
    assert f"experiment / plain: {rates['experiment'] / rates['plain']:.2f}x" in out
