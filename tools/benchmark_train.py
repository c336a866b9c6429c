"""Examples/s of an experiment's train step, and its share of the matmul peak.

Examples:
    python tools/benchmark_train.py --experiment=resnet_imagenet \\
      --global_batch_size=32 --image_size=224 --num_loops=3 --steps_per_loop=5
    python tools/benchmark_train.py --experiment=resnet_digits --num_loops=5 \\
      --steps_per_loop=20 --output_json=/tmp/digits_bench.json

What runs is the real trainer (`official.core.trainer.Trainer.train`: the
strategy from `runtime`, the task's model, loss and metrics, the configured
optimizer, mixed precision, EMA, XLA...) on synthetic input: one batch of
random normalized images and random labels at the model's input size, held in
memory and repeated, so the numbers measure the train step and not the input
pipeline. One warm-up loop (tracing, first-step allocations) runs first and is
not counted; then `--num_loops` loops of `--steps_per_loop` steps are timed.

The share of peak compares the train step's arithmetic rate with this
machine's float32 matmul rate (a large `tf.linalg.matmul`, best of several
steady-state runs, on the strategy's first device). The train step's FLOPs
are estimated as 3x the forward FLOPs per example (the backward pass costs
about twice the forward), counted as in `tools/model_summary.py`: 2 x the
multiply-adds of convolutions and matrix products.

Supports image classification experiments (an `ImageClassificationTaskConfig`).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

# Flags live in their own FlagValues, so that importing this module (tests)
# never clashes with other binaries' flags in the same process.
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "experiment",
    None,
    "A registered experiment name, e.g. resnet_imagenet.",
    flag_values=FLAGS,
)
flags.DEFINE_multi_string(
    "config_file",
    [],
    "YAML files applied after the experiment's defaults.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "params_override",
    "",
    "Comma-separated dotted.key=value overrides, applied before the flags below.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "global_batch_size",
    32,
    "Examples per train step, over all replicas.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "image_size",
    None,
    "Square input side in pixels (default: the experiment's input_size).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "num_loops", 3, "Timed loops, after one untimed warm-up loop.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "steps_per_loop",
    5,
    "Train steps per loop (one tf.function call).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "matmul_size",
    2048,
    "Side of the square float32 matmul that measures the peak.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "output_json", None, "Also write the results to this JSON file.", flag_values=FLAGS
)


# ---- the machine's peak --------------------------------------------------------


def matmul_peak_gflops(
    size: int = 2048,
    device: str | None = None,
    min_seconds: float = 1.0,
    min_repeats: int = 3,
) -> float:
    """Best steady-state GFLOP/s of float32 `size` x `size` matmuls on `device`.

    The matmuls are chained (each multiplies the previous result) inside one
    `tf.function` call, so that nothing is optimized away and dispatch costs
    nothing; a call runs long enough (~0.2 s) to time reliably. The first
    call (tracing) is not timed.
    """
    import tensorflow as tf

    if size <= 0:
        raise ValueError(f"matmul_size must be > 0. Received: {size}.")
    with tf.device(device):
        a = tf.random.stateless_normal((size, size), seed=[1, 2])
        # Scaled to keep the chained product's magnitude about constant.
        b = tf.random.stateless_normal((size, size), seed=[3, 4]) / math.sqrt(size)

        @tf.function
        def chain(x, count):
            for _ in tf.range(count):
                x = tf.linalg.matmul(x, b)
            return tf.reduce_sum(x)

        def timed(count: int) -> float:
            start = time.perf_counter()
            chain(a, tf.constant(count)).numpy()
            return time.perf_counter() - start

        timed(1)  # trace
        count = max(1, math.ceil(0.2 / max(timed(1), 1e-6)))
        flops = 2.0 * size**3 * count
        best, total, runs = 0.0, 0.0, 0
        while runs < min_repeats or total < min_seconds:
            seconds = timed(count)
            best = max(best, flops / seconds)
            total += seconds
            runs += 1
    return best / 1e9


# ---- the experiment -------------------------------------------------------------


def _model_summary_module():
    """tools/model_summary.py (tools/ is not a package): its FLOP counter."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_summary.py")
    spec = importlib.util.spec_from_file_location("garden_tools_model_summary", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(
    experiment: str,
    config_files: list[str] = (),
    params_override: str = "",
    global_batch_size: int = 32,
    image_size: int | None = None,
    num_loops: int = 3,
    steps_per_loop: int = 5,
):
    """The experiment's config set up for the benchmark (validated).

    `params_override` applies first; the batch size, image size and loop
    lengths given here replace what it or the experiment set. Training runs
    `num_loops + 1` loops (the first is the warm-up), with no evaluation and a
    single checkpoint at the end.
    """
    import official.registry_imports  # noqa: F401
    from official.core import config_loader, exp_factory
    from official.vision.configs.image_classification import (
        ImageClassificationTaskConfig,
    )

    for name, value in (
        ("global_batch_size", global_batch_size),
        ("num_loops", num_loops),
        ("steps_per_loop", steps_per_loop),
    ):
        if value <= 0:
            raise ValueError(f"--{name} must be > 0. Received: {value}.")
    if image_size is not None and image_size <= 0:
        raise ValueError(f"--image_size must be > 0. Received: {image_size}.")
    items = {}
    if params_override:
        items = config_loader.parse_params_override(params_override)
    train_steps = (num_loops + 1) * steps_per_loop
    items.update(
        {
            "task.train_data.global_batch_size": global_batch_size,
            "trainer.train_steps": train_steps,
            "trainer.steps_per_loop": steps_per_loop,
            "trainer.checkpoint_interval": train_steps,
            "trainer.validation_interval": 0,
        }
    )
    task = exp_factory.get_exp_config(experiment).task
    if not isinstance(task, ImageClassificationTaskConfig):
        raise ValueError(
            f"Experiment {experiment!r} has a {type(task).__name__}: benchmark_train "
            "supports image classification experiments (ImageClassificationTaskConfig, "
            "e.g. resnet_imagenet, resnet_digits)."
        )
    model = task.model
    if image_size is not None:
        channels = model.input_size[-1]
        items["task.model.input_size"] = [image_size, image_size, channels]
    return config_loader.load_experiment_config(experiment, list(config_files), items)


def synthetic_dataset_fn(config, seed: int = 0):
    """`dataset_fn(input_context)` for `distribute_datasets_from_function`.

    Each input pipeline repeats one in-memory batch of standard-normal images
    `[per_replica_batch, height, width, channels]` and random labels, in the
    format the task's training input produces (int32 class ids, or float32
    one-hot soft labels when mixup or cutmix is on).
    """
    import tensorflow as tf

    height, width, channels = config.task.model.input_size
    num_classes = config.task.model.num_classes
    global_batch = config.task.train_data.global_batch_size

    def dataset_fn(ctx: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        batch = ctx.get_per_replica_batch_size(global_batch) if ctx else global_batch
        pipeline = ctx.input_pipeline_id if ctx else 0
        images = tf.random.stateless_normal(
            (batch, height, width, channels), seed=[seed, pipeline]
        )
        labels = tf.random.stateless_uniform(
            (batch,),
            seed=[seed + 1, pipeline],
            minval=0,
            maxval=num_classes,
            dtype=tf.int32,
        )
        return tf.data.Dataset.from_tensors((images, labels)).repeat()

    return dataset_fn


def _loop_timer():
    from official.core.hooks import Hook

    class LoopTimer(Hook):
        """Wall time of each train loop (from the previous loop's end)."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._last = None

        def on_train_begin(self, logs=None):
            self._last = time.perf_counter()

        def on_loop_end(self, step, logs):
            now = time.perf_counter()
            self.seconds.append(now - self._last)
            self._last = now

    return LoopTimer()


def benchmark(
    experiment: str,
    config_files: list[str] = (),
    params_override: str = "",
    global_batch_size: int = 32,
    image_size: int | None = None,
    num_loops: int = 3,
    steps_per_loop: int = 5,
    matmul_size: int = 2048,
) -> dict:
    """Times an experiment's train step on synthetic input.

    Args:
        experiment: str, a registered image classification experiment.
        config_files: YAML files applied after the experiment's defaults.
        params_override: `"a.b=1,c=x"` overrides, applied before the
            arguments below.
        global_batch_size: int, examples per step over all replicas.
        image_size: int, square input side; None keeps the experiment's.
        num_loops: int, timed loops after one untimed warm-up loop.
        steps_per_loop: int, steps per loop.
        matmul_size: int, side of the matmul that measures the peak.

    Returns:
        dict with `examples_per_second` (steady state), `step_seconds`,
        `loop_seconds` (every loop, warm-up first), `forward_flops_per_example`,
        `train_flops_per_example` (3x forward), `achieved_gflops`,
        `matmul_peak_gflops`, `peak_share`, and the settings measured.
    """
    import keras
    import tensorflow as tf

    from official.core import distribute, task_factory
    from official.core.trainer import Trainer

    config = load_config(
        experiment,
        config_files,
        params_override,
        global_batch_size,
        image_size,
        num_loops,
        steps_per_loop,
    )
    runtime = config.runtime
    if runtime.seed is not None:
        keras.utils.set_random_seed(runtime.seed)
    from official.modeling.layers import conv2d

    previous_policy = keras.mixed_precision.global_policy()
    previous_matmul = conv2d.conv1x1_as_matmul()
    keras.mixed_precision.set_global_policy(runtime.mixed_precision_dtype)
    conv2d.set_conv1x1_as_matmul(runtime.conv1x1_as_matmul)
    model_dir = tempfile.mkdtemp(prefix="benchmark_train_")
    try:
        strategy = distribute.get_strategy(
            runtime.distribution_strategy,
            runtime.num_devices,
            worker_start_timeout=runtime.worker_start_timeout_seconds,
            tpu_address=runtime.tpu_address,
        )
        task = task_factory.get_task(config.task)
        timer = _loop_timer()
        trainer = Trainer(config, task, model_dir, strategy, hooks=[timer])
        dataset_fn = synthetic_dataset_fn(config)
        dataset = strategy.distribute_datasets_from_function(dataset_fn)
        try:
            trainer.train(dataset)
        finally:
            trainer.close()
        input_shape = tuple(config.task.model.input_size)
        forward_flops = _model_summary_module().count_flops(trainer.model, input_shape)
        devices = list(getattr(strategy.extended, "worker_devices", ()))
        peak = matmul_peak_gflops(matmul_size, devices[0] if devices else None)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        conv2d.set_conv1x1_as_matmul(previous_matmul)
        shutil.rmtree(model_dir, ignore_errors=True)

    timed = timer.seconds[1:]
    steps = steps_per_loop * len(timed)
    seconds = sum(timed)
    examples_per_second = steps * global_batch_size / seconds
    train_flops = 3 * forward_flops
    achieved = examples_per_second * train_flops / 1e9
    return {
        "experiment": experiment,
        "global_batch_size": global_batch_size,
        "input_size": list(config.task.model.input_size),
        "num_loops": num_loops,
        "steps_per_loop": steps_per_loop,
        "strategy": runtime.distribution_strategy,
        "num_replicas": strategy.num_replicas_in_sync,
        "devices": devices,
        "mixed_precision_dtype": runtime.mixed_precision_dtype,
        "jit_compile": config.trainer.jit_compile,
        "loop_seconds": timer.seconds,
        "warmup_seconds": timer.seconds[0],
        "step_seconds": seconds / steps,
        "examples_per_second": examples_per_second,
        "loop_examples_per_second": [
            steps_per_loop * global_batch_size / s for s in timed
        ],
        "forward_flops_per_example": forward_flops,
        "train_flops_per_example": train_flops,
        "achieved_gflops": achieved,
        "matmul_size": matmul_size,
        "matmul_peak_gflops": peak,
        "peak_share": achieved / peak,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }


def format_table(result: dict) -> str:
    """The results as an aligned two-column table."""
    r = result
    size = "x".join(str(d) for d in r["input_size"])
    per_loop = ", ".join(f"{v:.3g}" for v in r["loop_examples_per_second"])
    devices = ", ".join(r["devices"]) or "?"
    xla = "on" if r["jit_compile"] else "off"
    n = r["matmul_size"]
    rows = [
        ("experiment", r["experiment"]),
        ("input", f"{size}, global batch {r['global_batch_size']}"),
        ("strategy", f"{r['strategy']} ({r['num_replicas']} replica(s) on {devices})"),
        ("precision / XLA", f"{r['mixed_precision_dtype']} / {xla}"),
        (
            "loops timed",
            f"{r['num_loops']} x {r['steps_per_loop']} steps (warm-up loop "
            f"{r['warmup_seconds']:.2f} s, not counted)",
        ),
        ("examples/s", f"{r['examples_per_second']:.2f} (per loop: {per_loop})"),
        ("s/step", f"{r['step_seconds']:.4f}"),
        ("forward GFLOPs/example", f"{r['forward_flops_per_example'] / 1e9:.4g}"),
        (
            "train GFLOPs/example",
            f"{r['train_flops_per_example'] / 1e9:.4g} (3x forward)",
        ),
        ("achieved GFLOP/s", f"{r['achieved_gflops']:.2f}"),
        ("float32 matmul peak", f"{r['matmul_peak_gflops']:.2f} GFLOP/s ({n}x{n})"),
        ("share of peak", f"{100 * r['peak_share']:.1f} %"),
        (
            "versions",
            f"TensorFlow {r['tensorflow']}, Keras {r['keras']}, "
            f"{r['cpu_count']} CPU(s)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str]) -> int:
    """Parses `argv` (program name first), runs, prints; returns the exit code."""
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    if not FLAGS.experiment:
        print(
            "error: --experiment is required (e.g. --experiment=resnet_imagenet).",
            file=sys.stderr,
        )
        return 2
    from official.core.trainer import Preempted

    try:
        result = benchmark(
            FLAGS.experiment,
            FLAGS.config_file,
            FLAGS.params_override,
            FLAGS.global_batch_size,
            FLAGS.image_size,
            FLAGS.num_loops,
            FLAGS.steps_per_loop,
            FLAGS.matmul_size,
        )
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if e.args else str(e)
        print(f"error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    except Preempted:
        print("error: stopped by SIGTERM before the timing finished.", file=sys.stderr)
        return 1
    print(format_table(result))
    if FLAGS.output_json:
        directory = os.path.dirname(FLAGS.output_json)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(FLAGS.output_json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"Wrote {FLAGS.output_json}")
    return 0


if __name__ == "__main__":
    # Run from a checkout without installing: make `tools` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from official.core.quiet_start import import_tensorflow_quietly

    import_tensorflow_quietly()
    sys.exit(main(sys.argv))
