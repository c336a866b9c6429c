"""Examples/s of an experiment's train step, and its share of the matmul peak.

Examples:
    python tools/benchmark_train.py --experiment=resnet_imagenet \\
      --global_batch_size=32 --image_size=224 --num_loops=3 --steps_per_loop=5
    python tools/benchmark_train.py --experiment=resnet_digits --num_loops=5 \\
      --steps_per_loop=20 --output_json=/tmp/digits_bench.json
    python tools/benchmark_train.py --experiment=resnet_imagenet \\
      --global_batch_size=8 --image_size=128 --num_loops=2 --steps_per_loop=5 \\
      --reference=tf_models_official
    python tools/benchmark_train.py --experiment=retinanet_resnetfpn_coco \\
      --global_batch_size=2 --image_size=384 --num_loops=2 --steps_per_loop=3 \\
      --reference=tf_models_official
    python tools/benchmark_train.py --experiment=bert_sentence_prediction \\
      --global_batch_size=8 --seq_length=128 --num_loops=2 --steps_per_loop=3 \\
      --reference=tf_models_official

What runs is the real trainer (`official.core.trainer.Trainer.train`: the
strategy from `runtime`, the task's model, loss and metrics, the configured
optimizer, mixed precision, EMA, XLA...) on synthetic input: one batch held
in memory and repeated, so the numbers measure the train step and not the
input pipeline. One warm-up loop (tracing, first-step allocations) runs
first and is not counted; then `--num_loops` loops of `--steps_per_loop`
steps are timed.

Three task families are supported (`tools/benchmark_families.py` makes
their batches):
- image classification (`ImageClassificationTaskConfig`, e.g.
  `resnet_imagenet`): random normalized images and labels at the model's
  input size (`--image_size` changes it);
- RetinaNet detection (`RetinaNetTaskConfig`, e.g.
  `retinanet_resnetfpn_coco`): random normalized images and 8 random
  ground-truth boxes per image, turned into anchor targets by the task's
  `AnchorLabeler` once, outside the timed step (`--image_size`; a multiple
  of `2**max_level`, 128 for P3-P7);
- sentence prediction (`SentencePredictionTaskConfig`, e.g.
  `bert_sentence_prediction`): already packed int32 word ids, input mask
  and type ids of `--seq_length` (default the experiment's), so
  tokenization is not timed; without `task.preprocessing.vocab_file` a
  vocabulary of BERT's 30,522 tokens is written, so the embedding has
  BERT's size.

The share of peak compares the train step's arithmetic rate with this
machine's float32 matmul rate (a large `tf.linalg.matmul`, best of several
steady-state runs, on the strategy's first device). The train step's FLOPs
are estimated as 3x the forward FLOPs per example (the backward pass costs
about twice the forward), counted as in `tools/model_summary.py`: 2 x the
multiply-adds of convolutions and matrix products.

Beside the rate it reports what decides it on a CPU (`tools/benchmark_host.py`):
the CPU model and its AVX2 / AVX-512 / VNNI / bfloat16 / AMX units, whether
TensorFlow runs oneDNN's kernels, the malloc settings of
`official.core.cpu_tuning`, per train step the user and system CPU seconds
and the page faults of the process, and the mean loss of each loop.

`--reference=tf_models_official` then runs tf-models-official 2.20's own
train step on the same arrays, in a virtual environment of its own (made
with pip under `$GARDEN_HOME/benchmark/` on first use, or
`--reference_python`), with the same warm-up and timed loops, and prints
both rates and their ratio (`tools/tfm_reference_step.py`, its
`base_trainer.Trainer` and the optimizer its experiment configures). It
runs with the environment the user gave, without the oneDNN variable
Garden's process set for itself. The counterparts:
- classification: its `resnet_imagenet` with the same ResNet depth, input
  size, classes, batch and precision;
- detection: its `retinanet_resnetfpn_coco` with the same ResNet depth,
  input size, classes (91), levels, anchors, FPN and head widths, matching
  thresholds, focal / Huber constants and box loss weight, no initial
  checkpoint. Its anchor targets come from its own anchor labeler on the
  same boxes. What differs is each library's own recipe: its loss divides
  by (positive anchors + 1), Garden's by max(positive anchors, 1); its
  weight decay is an L2 term (1e-4) in the loss, Garden's is decoupled in
  SGD; its learning rate is stepwise after warmup, Garden's a cosine;
- text: its `bert/sentence_prediction` with a BERT encoder of the same
  shape (vocabulary, width, layers, heads, MLP width, positions, dropout),
  the classifier on the encoder's pooler (`use_encoder_pooler=True`, as
  Garden's), labels as `label_ids`. Both use AdamW (weight decay 0.01,
  biases and layer norms excluded, gradients clipped at global norm 1) with
  linear warmup and decay (both with the tanh GELU); its optimizer is
  tf-keras' `AdamWeightDecay` (epsilon 1e-7, Garden's 1e-6).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
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
    "seq_length",
    None,
    "Sequence length of a text experiment (default: its "
    "task.preprocessing.seq_length).",
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
flags.DEFINE_enum(
    "reference",
    "none",
    ["none", "tf_models_official"],
    "Also time tf-models-official's train step on the same batch, in its own "
    "virtual environment (ResNet classifiers, RetinaNet on ResNet + FPN, BERT "
    "sentence prediction; one device).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "reference_python",
    None,
    "A Python that has tf-models-official installed (default: the one in "
    "--reference_venv).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "reference_venv",
    None,
    "Virtual environment for the reference, made with pip on first use "
    "(default: $GARDEN_HOME/benchmark/tf-models-official-2.20).",
    flag_values=FLAGS,
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
    seq_length: int | None = None,
):
    """The experiment's config set up for the benchmark (validated).

    `params_override` applies first; the batch size, input size (image side
    or sequence length) and loop lengths given here replace what it or the
    experiment set. Training runs `num_loops + 1` loops (the first is the
    warm-up), with no evaluation and a single checkpoint at the end. A text
    experiment without a vocabulary gets a synthetic one of BERT's size
    (`benchmark_families.synthetic_vocabulary`).
    """
    import official.registry_imports  # noqa: F401
    from official.core import config_loader, exp_factory
    from tools import benchmark_families

    for name, value in (
        ("global_batch_size", global_batch_size),
        ("num_loops", num_loops),
        ("steps_per_loop", steps_per_loop),
    ):
        if value <= 0:
            raise ValueError(f"--{name} must be > 0. Received: {value}.")
    for name, value in (("image_size", image_size), ("seq_length", seq_length)):
        if value is not None and value <= 0:
            raise ValueError(f"--{name} must be > 0. Received: {value}.")
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
    family = benchmark_families.family_of(task)
    items.update(family.overrides(task, image_size, seq_length))
    config = config_loader.load_experiment_config(experiment, list(config_files), items)
    family.finish(config)
    return config


def synthetic_batch(config, batch: int, pipeline: int = 0, seed: int = 0):
    """One batch in the format the task's training input produces.

    Images: standard-normal; classification labels: random int32 class ids;
    detection labels: the anchor targets of random boxes; text: packed
    random word ids (`tools/benchmark_families.py`).
    """
    from tools import benchmark_families

    family = benchmark_families.family_of(config.task)
    return family.training_batch(config, family.arrays(config, batch, pipeline, seed))


def synthetic_dataset_fn(config, seed: int = 0):
    """`dataset_fn(input_context)` for `distribute_datasets_from_function`.

    Each input pipeline repeats one in-memory batch of `per_replica_batch`
    examples (`synthetic_batch`), in the format the task's training input
    produces.
    """
    import tensorflow as tf

    global_batch = config.task.train_data.global_batch_size

    def dataset_fn(ctx: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        batch = ctx.get_per_replica_batch_size(global_batch) if ctx else global_batch
        pipeline = ctx.input_pipeline_id if ctx else 0
        features, labels = synthetic_batch(config, batch, pipeline, seed)
        return tf.data.Dataset.from_tensors((features, labels)).repeat()

    return dataset_fn


def _loop_timer():
    from official.core.hooks import Hook
    from tools import benchmark_host

    class LoopTimer(Hook):
        """Wall time and CPU use of each train loop (from the previous loop's end)."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.usage: list[dict] = []
            self.losses: list[float] = []
            self._last = None
            self._last_usage = None

        def on_train_begin(self, logs=None):
            self._last = time.perf_counter()
            self._last_usage = benchmark_host.usage()

        def on_loop_end(self, step, logs):
            now, now_usage = time.perf_counter(), benchmark_host.usage()
            self.seconds.append(now - self._last)
            self.losses.append(float(logs.get("loss", math.nan)))
            self.usage.append(benchmark_host.usage_delta(self._last_usage, now_usage))
            self._last, self._last_usage = now, now_usage

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
    reference_python: str | None = None,
    seq_length: int | None = None,
) -> dict:
    """Times an experiment's train step on synthetic input.

    Args:
        experiment: str, a registered experiment of a supported family
            (`tools/benchmark_families.py`: image classification,
            RetinaNet detection, sentence prediction).
        config_files: YAML files applied after the experiment's defaults.
        params_override: `"a.b=1,c=x"` overrides, applied before the
            arguments below.
        global_batch_size: int, examples per step over all replicas.
        image_size: int, square input side of an image experiment; None
            keeps the experiment's.
        num_loops: int, timed loops after one untimed warm-up loop.
        steps_per_loop: int, steps per loop.
        matmul_size: int, side of the matmul that measures the peak.
        reference_python: a Python with tf-models-official; when given, its
            train step runs on the same batch (`tools/benchmark_host.py`)
            and the result gets a `reference` entry.
        seq_length: int, sequence length of a text experiment; None keeps
            the experiment's.

    Returns:
        dict with `family`, `input_size` (`[h, w, c]`, or `["tokens",
        length]`), `examples_per_second` (steady state), `step_seconds`,
        `loop_seconds` (every loop, warm-up first), `forward_flops_per_example`,
        `train_flops_per_example` (3x forward), `achieved_gflops`,
        `matmul_peak_gflops`, `peak_share`, `host` (CPU model and
        features, cores, oneDNN, malloc settings), `per_step` (user and
        system CPU seconds, minor and major page faults, averaged over the
        timed loops), `system_share` (system / (user + system) CPU time),
        and the settings measured.
    """
    import keras
    import tensorflow as tf

    from official.core import distribute, task_factory
    from official.core.trainer import Trainer
    from tools import benchmark_families, benchmark_host

    config = load_config(
        experiment,
        config_files,
        params_override,
        global_batch_size,
        image_size,
        num_loops,
        steps_per_loop,
        seq_length,
    )
    family = benchmark_families.family_of(config.task)
    runtime = config.runtime
    spec = None
    if reference_python:
        spec = benchmark_host.reference_spec(config, num_loops, steps_per_loop)
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
        input_shape = family.input_shape(config)
        forward_flops = _model_summary_module().count_flops(trainer.model, input_shape)
        parameters = sum(math.prod(v.shape) for v in trainer.model.trainable_variables)
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
    per_step = _per_step(timer.usage[1:], steps)
    reference = None
    if spec is not None:
        arrays = family.arrays(config, global_batch_size)
        reference = _reference_result(
            benchmark_host.run_reference(spec, arrays, reference_python),
            global_batch_size,
            steps_per_loop,
        )
        reference["ratio"] = examples_per_second / reference["examples_per_second"]
    return {
        "experiment": experiment,
        "family": family.name,
        "global_batch_size": global_batch_size,
        "input_size": list(input_shape),
        "num_loops": num_loops,
        "steps_per_loop": steps_per_loop,
        "strategy": runtime.distribution_strategy,
        "num_replicas": strategy.num_replicas_in_sync,
        "devices": devices,
        "mixed_precision_dtype": runtime.mixed_precision_dtype,
        "jit_compile": config.trainer.jit_compile,
        "loop_seconds": timer.seconds,
        "loop_losses": timer.losses,
        "warmup_seconds": timer.seconds[0],
        "step_seconds": seconds / steps,
        "examples_per_second": examples_per_second,
        "loop_examples_per_second": [
            steps_per_loop * global_batch_size / s for s in timed
        ],
        "trainable_parameters": int(parameters),
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
        "host": benchmark_host.host_info(),
        "per_step": per_step,
        "system_share": _system_share(per_step),
        "reference": reference,
    }


def _per_step(usages: list[dict], steps: int) -> dict:
    """Sums of `usage_delta` dicts divided by the number of steps."""
    keys = ("user_seconds", "system_seconds", "minor_faults", "major_faults")
    return {key: sum(u[key] for u in usages) / steps for key in keys}


def _system_share(per_step: dict) -> float:
    cpu = per_step["user_seconds"] + per_step["system_seconds"]
    return per_step["system_seconds"] / cpu if cpu else 0.0


def _reference_result(raw: dict, global_batch_size: int, steps_per_loop: int) -> dict:
    """tfm_reference_step.py's result in benchmark terms (warm-up loop dropped)."""
    timed = raw["loops"][1:]
    steps = steps_per_loop * len(timed)
    seconds = sum(loop["seconds"] for loop in timed)
    per_step = _per_step(timed, steps)
    return {
        "tf_models_official": raw["tf_models_official"],
        "tensorflow": raw["tensorflow"],
        "onednn": raw["onednn"],
        "trainable_parameters": raw["trainable_parameters"],
        "loop_seconds": [loop["seconds"] for loop in raw["loops"]],
        "loop_losses": [loop["loss"] for loop in raw["loops"]],
        "step_seconds": seconds / steps,
        "examples_per_second": steps * global_batch_size / seconds,
        "per_step": per_step,
        "system_share": _system_share(per_step),
    }


def _cpu_row(result: dict) -> str:
    p = result["per_step"]
    return (
        f"{p['user_seconds']:.3f} s user, {p['system_seconds']:.3f} s system "
        f"({100 * result['system_share']:.1f} % system); "
        f"{p['minor_faults']:.0f} minor / {p['major_faults']:.0f} major page faults"
    )


def _losses(losses: list[float]) -> str:
    return ", ".join(f"{v:.4g}" for v in losses) + " (warm-up first)"


def _malloc_text(settings: dict | None) -> str:
    if settings is None:
        return "not glibc (unchanged)"
    if not settings:
        return "unchanged (environment or GARDEN_CPU_TUNING=0)"
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def format_table(result: dict) -> str:
    """The results as an aligned two-column table."""
    from tools import benchmark_host

    r = result
    if r["input_size"][0] == "tokens":
        size = f"sequence {r['input_size'][1]}"
    else:
        size = "x".join(str(d) for d in r["input_size"])
    per_loop = ", ".join(f"{v:.3g}" for v in r["loop_examples_per_second"])
    devices = ", ".join(r["devices"]) or "?"
    xla = "on" if r["jit_compile"] else "off"
    n = r["matmul_size"]
    rows = [
        ("experiment", f"{r['experiment']} ({r['family']})"),
        ("input", f"{size}, global batch {r['global_batch_size']}"),
        ("strategy", f"{r['strategy']} ({r['num_replicas']} replica(s) on {devices})"),
        ("precision / XLA", f"{r['mixed_precision_dtype']} / {xla}"),
        (
            "loops timed",
            f"{r['num_loops']} x {r['steps_per_loop']} steps (warm-up loop "
            f"{r['warmup_seconds']:.2f} s, not counted)",
        ),
        ("examples/s", f"{r['examples_per_second']:.2f} (per loop: {per_loop})"),
        ("loss per loop", _losses(r["loop_losses"])),
        ("s/step", f"{r['step_seconds']:.4f}"),
        ("trainable parameters", f"{r['trainable_parameters']:,}"),
        ("forward GFLOPs/example", f"{r['forward_flops_per_example'] / 1e9:.4g}"),
        (
            "train GFLOPs/example",
            f"{r['train_flops_per_example'] / 1e9:.4g} (3x forward)",
        ),
        ("achieved GFLOP/s", f"{r['achieved_gflops']:.2f}"),
        ("float32 matmul peak", f"{r['matmul_peak_gflops']:.2f} GFLOP/s ({n}x{n})"),
        ("share of peak", f"{100 * r['peak_share']:.1f} %"),
        ("CPU time per step", _cpu_row(r)),
        (
            "CPU",
            f"{r['host']['cpu_model']} ({', '.join(r['host']['cpu_features']) or '-'}"
            f"), {r['host']['cores']} core(s) usable",
        ),
        (
            "kernels / malloc",
            f"oneDNN {benchmark_host.on_off(r['host']['onednn'])}; malloc "
            f"{_malloc_text(r['host']['malloc_settings'])}",
        ),
        (
            "versions",
            f"TensorFlow {r['tensorflow']}, Keras {r['keras']}, "
            f"{r['cpu_count']} CPU(s)",
        ),
    ]
    ref = r.get("reference")
    if ref:
        rows += [
            (
                "reference",
                f"tf-models-official {ref['tf_models_official']}, TensorFlow "
                f"{ref['tensorflow']}, oneDNN {benchmark_host.on_off(ref['onednn'])}",
            ),
            (
                "reference examples/s",
                f"{ref['examples_per_second']:.2f} ({ref['step_seconds']:.4f} s/step)",
            ),
            ("reference parameters", f"{ref['trainable_parameters']:,} trainable"),
            ("reference CPU/step", _cpu_row(ref)),
            ("reference loss/loop", _losses(ref["loop_losses"])),
            ("Garden / reference", f"{ref['ratio']:.2f}x examples/s"),
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
    from tools import benchmark_host

    reference_python = None
    if FLAGS.reference == "tf_models_official":
        reference_python = FLAGS.reference_python
        if not reference_python:
            from official.core.model_store import garden_home

            venv = FLAGS.reference_venv or os.path.join(
                garden_home(), "benchmark", "tf-models-official-2.20"
            )
            try:
                reference_python = benchmark_host.ensure_reference_venv(venv)
            except (OSError, subprocess.CalledProcessError) as e:
                print(f"error: could not make {venv}: {e}", file=sys.stderr)
                return 1
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
            reference_python,
            FLAGS.seq_length,
        )
    except (KeyError, TypeError, ValueError, FileNotFoundError, RuntimeError) as e:
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
