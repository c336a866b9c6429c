"""Seconds per train step of two training binaries on the same JPEG records.

Example:
    python tools/benchmark_binaries.py --image_size=128 --global_batch_size=8 \\
      --short_steps=20 --long_steps=50

What it compares is what a user runs: Garden's `python -m official.train` and
tf-models-official 2.20's `python -m official.vision.train`, both with the
`resnet_imagenet` experiment (ResNet-50 unless `--model_id`), float32, one
device, reading the same ImageNet-style TFRecords of JPEG images
(`image/encoded`, `image/class/label`) that this tool writes first (random
smooth images, `--num_images` of them, 15 % larger than the input size, so
both decode, crop, resize and flip as they would on ImageNet). Each binary
trains `--short_steps` and then `--long_steps` steps in a fresh model
directory (loops of up to 10 steps that divide both counts); the per-step time is the difference of the two wall times over
the difference of the steps, so start-up, tracing and the final checkpoint
cancel out. The same difference of the children's user and system CPU time
(`getrusage`) gives CPU seconds per step. The binaries run one after the
other, `--repeats` times, alternating; the ratio uses each binary's fastest
repeat.

tf-models-official runs from its own virtual environment (`--reference_python`,
or the one `tools/benchmark_train.py --reference=tf_models_official` makes
under `$GARDEN_HOME/benchmark/`), in isolated mode, with the environment the
user gave.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_integer(
    "image_size", 128, "Square input side in pixels.", flag_values=FLAGS
)
flags.DEFINE_integer("global_batch_size", 8, "Examples per step.", flag_values=FLAGS)
flags.DEFINE_integer(
    "model_id", 50, "ResNet depth (18, 34, 50, 101...).", flag_values=FLAGS
)
flags.DEFINE_integer("short_steps", 20, "Steps of the short run.", flag_values=FLAGS)
flags.DEFINE_integer("long_steps", 50, "Steps of the long run.", flag_values=FLAGS)
flags.DEFINE_integer("num_images", 256, "JPEG images written.", flag_values=FLAGS)
flags.DEFINE_integer(
    "repeats", 1, "Alternating repeats of each binary.", flag_values=FLAGS
)
flags.DEFINE_string(
    "reference_python",
    None,
    "A Python with tf-models-official 2.20 (default: the benchmark venv).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "work_dir", None, "Where records and runs go (default: temp).", flag_values=FLAGS
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_records(
    directory: str, num_images: int, size: int, num_classes: int = 1001
) -> str:
    """Writes 2 shards of ImageNet-style JPEG records; returns their glob."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    side = int(size * 1.15)
    shards = 2
    for shard in range(shards):
        path = os.path.join(directory, f"train-{shard:05d}-of-{shards:05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(num_images // shards):
                coarse = rng.uniform(0, 255, (8, 8, 3)).astype("float32")
                image = tf.image.resize(coarse[None], (side, side))[0]
                noise = rng.normal(0, 12, (side, side, 3))
                pixels = np.clip(image.numpy() + noise, 0, 255).astype("uint8")
                feature = {
                    "image/encoded": tf.train.Feature(
                        bytes_list=tf.train.BytesList(
                            value=[tf.io.encode_jpeg(pixels, quality=90).numpy()]
                        )
                    ),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(
                            value=[int(rng.integers(1, num_classes))]
                        )
                    ),
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
    return os.path.join(directory, "train-*")


def steps_per_loop() -> int:
    """The longest loop (at most 10 steps) that divides both runs' step counts."""
    common = math.gcd(FLAGS.short_steps, FLAGS.long_steps)
    return max(d for d in range(1, 11) if common % d == 0)


def garden_command(records: str, model_dir: str, steps: int) -> list[str]:
    size = FLAGS.image_size
    overrides = ",".join(
        [
            f"task.train_data.input_path={records}",
            f"task.model.input_size=[{size},{size},3]",
            f"task.model.backbone.params.model_id={FLAGS.model_id}",
            f"task.train_data.global_batch_size={FLAGS.global_batch_size}",
            f"trainer.train_steps={steps}",
            f"trainer.steps_per_loop={steps_per_loop()}",
            f"trainer.checkpoint_interval={steps}",
            "runtime.distribution_strategy=one_device",
            "runtime.mixed_precision_dtype=float32",
        ]
    )
    return [
        sys.executable,
        "-m",
        "official.train",
        "--experiment=resnet_imagenet",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--params_override={overrides}",
    ]


def reference_command(
    python: str, records: str, model_dir: str, steps: int
) -> list[str]:
    size = FLAGS.image_size
    overrides = ",".join(
        [
            f"task.train_data.input_path={records}",
            f"task.validation_data.input_path={records}",
            f"task.model.input_size=[{size},{size},3]",
            f"task.model.backbone.resnet.model_id={FLAGS.model_id}",
            f"task.train_data.global_batch_size={FLAGS.global_batch_size}",
            f"trainer.train_steps={steps}",
            f"trainer.steps_per_loop={steps_per_loop()}",
            f"trainer.summary_interval={steps_per_loop()}",
            f"trainer.checkpoint_interval={steps}",
            "runtime.distribution_strategy=one_device",
            "runtime.mixed_precision_dtype=float32",
        ]
    )
    return [
        python,
        "-I",
        "-m",
        "official.vision.train",
        "--experiment=resnet_imagenet",
        "--mode=train",
        f"--model_dir={model_dir}",
        f"--params_override={overrides}",
    ]


def timed_run(command: list[str], env: dict, cwd: str) -> dict:
    """Runs `command`; its wall time and its CPU time (children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{' '.join(command[:4])} ... failed:\n{tail}")
    return {
        "seconds": seconds,
        "user_seconds": after.ru_utime - before.ru_utime,
        "system_seconds": after.ru_stime - before.ru_stime,
    }


def per_step(short: dict, long: dict, steps: int) -> dict:
    """(long - short) / steps for each measure."""
    return {key: (long[key] - short[key]) / steps for key in short}


def best_step_seconds(runs: list[dict]) -> float | None:
    """The fastest repeat's seconds per step (None if none was positive).

    Another job on the machine only ever slows a run down, so the best
    repeat is the closest to the binary's own speed.
    """
    positive = [r["seconds"] for r in runs if r["seconds"] > 0]
    return min(positive) if positive else None


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    if not 0 < FLAGS.short_steps < FLAGS.long_steps:
        print("error: need 0 < --short_steps < --long_steps.", file=sys.stderr)
        return 2
    from official.core.quiet_start import import_tensorflow_quietly
    from tools import benchmark_host

    import_tensorflow_quietly()  # Writing the records needs TensorFlow.
    python = FLAGS.reference_python
    if not python:
        from official.core.model_store import garden_home

        venv = os.path.join(garden_home(), "benchmark", "tf-models-official-2.20")
        python = benchmark_host.ensure_reference_venv(venv)
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="benchmark_binaries_")
    os.makedirs(work, exist_ok=True)
    records = write_records(work, FLAGS.num_images, FLAGS.image_size)
    garden_env = {**benchmark_host.reference_environment(), "PYTHONPATH": ROOT}
    reference_env = benchmark_host.reference_environment()
    steps = FLAGS.long_steps - FLAGS.short_steps
    results: dict[str, list[dict]] = {"garden": [], "tf-models-official": []}
    for repeat in range(FLAGS.repeats):
        for name in results:
            runs = []
            for count in (FLAGS.short_steps, FLAGS.long_steps):
                model_dir = os.path.join(work, f"{name}-{repeat}-{count}")
                if name == "garden":
                    command, env = garden_command(records, model_dir, count), garden_env
                else:
                    command = reference_command(python, records, model_dir, count)
                    env = reference_env
                try:
                    runs.append(timed_run(command, env, work))
                except RuntimeError as e:
                    print(f"error: {e}", file=sys.stderr)
                    return 1
            results[name].append(per_step(runs[0], runs[1], steps))
            r = results[name][-1]
            print(
                f"{name:<20} {FLAGS.short_steps} steps {runs[0]['seconds']:.1f} s, "
                f"{FLAGS.long_steps} steps {runs[1]['seconds']:.1f} s: "
                f"{r['seconds']:.3f} s/step, "
                f"{FLAGS.global_batch_size / r['seconds']:.2f} examples/s, CPU "
                f"{r['user_seconds']:.3f} s user + {r['system_seconds']:.3f} s system "
                "per step",
                flush=True,
            )
    info = benchmark_host.host_info()
    garden = best_step_seconds(results["garden"])
    reference = best_step_seconds(results["tf-models-official"])
    if garden is None or reference is None:
        print(
            "error: a long run took no longer than its short run (the machine was "
            "busy); rerun with a larger --long_steps or more --repeats.",
            file=sys.stderr,
        )
        return 1
    print(
        f"Garden / tf-models-official: {reference / garden:.2f}x examples/s "
        f"(ResNet-{FLAGS.model_id}, {FLAGS.image_size} px, batch "
        f"{FLAGS.global_batch_size}, float32) on {info['cpu_model']} "
        f"({', '.join(info['cpu_features'])}), {info['cores']} core(s)."
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main(sys.argv))
