"""Batch-1 latency of every artifact of an export directory.

Example:
    python tools/benchmark_export.py --export_dir=exports/detection_shapes

For the SavedModel it times the first signature whose inputs are all
tensors of numbers (`image_tensor` for the vision tasks, `input_word_ids`
for text), and for each `.tflite` file its one signature, both on one
random example of the right shape and type (a `None` dimension takes the
TFLite file's size, else `--size`). Everything the artifact does runs,
decoding and non-max suppression included for a detector. After
`--warmup` untimed calls, `--runs` calls are timed one by one; the median
and the 90th percentile are printed in milliseconds, with the CPU model
(`tools/benchmark_host.py`). LiteRT runs with `--num_threads` threads and
XNNPACK, as `serving.export`'s parity check does. TensorFlow runs with its
own default CPU kernels, as the model server does (Garden's training
binaries turn oneDNN on; `official/core/cpu_tuning.py` says why not here);
the report says whether oneDNN ran. Set `TF_ENABLE_ONEDNN_OPTS` to choose.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "export_dir", None, "A serving.export output directory.", flag_values=FLAGS
)
flags.DEFINE_integer("runs", 50, "Timed calls per artifact.", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 5, "Untimed calls first.", flag_values=FLAGS)
flags.DEFINE_integer("num_threads", 2, "LiteRT interpreter threads.", flag_values=FLAGS)
flags.DEFINE_integer(
    "size",
    224,
    "A None dimension's size when no TFLite file gives it.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "output_json", None, "Also write the results here.", flag_values=FLAGS
)


def random_input(shape, dtype, rng):
    """One random example: uint8 / int pixels in [0, 255], ids in [0, 8), floats N(0, 1)."""
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 8, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def time_calls(call, runs: int, warmup: int) -> dict:
    """Median and 90th percentile milliseconds of `runs` calls of `call()`."""
    import numpy as np

    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "runs": runs,
    }


def tflite_latency(path: str, runs: int, warmup: int, threads: int, rng) -> tuple:
    """(latency dict, the file's input shape) of one .tflite file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()
    feed = {
        name: random_input(tuple(d["shape"]), d["dtype"], rng)
        for name, d in details.items()
    }
    shape = tuple(int(d) for d in next(iter(details.values()))["shape"])
    return time_calls(lambda: runner(**feed), runs, warmup), shape


def saved_model_latency(path: str, runs: int, warmup: int, fill: tuple, rng) -> dict:
    """Latency of the first all-numeric signature of the SavedModel at `path`.

    `fill` gives the sizes of `None` dimensions after the batch (e.g. a
    TFLite file's `(H, W, C)`); a dimension it does not cover takes
    `--size`.

    Raises:
        ValueError: no signature takes only numeric tensors.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    numeric = [
        name
        for name, signature in loaded.signatures.items()
        if all(
            spec.dtype != tf.string
            for spec in signature.structured_input_signature[1].values()
        )
    ]
    if not numeric:
        raise ValueError(
            f"{path}: no signature takes only numeric tensors "
            f"(signatures: {', '.join(loaded.signatures)})."
        )
    name = numeric[0]
    signature = loaded.signatures[name]
    specs = signature.structured_input_signature[1]
    feed = {}
    for key, spec in specs.items():
        dims = [1]
        for i, d in enumerate(spec.shape[1:]):
            dims.append(
                d if d is not None else (fill[i] if i < len(fill) else FLAGS.size)
            )
        feed[key] = tf.constant(random_input(dims, spec.dtype.as_numpy_dtype, rng))
    result = time_calls(lambda: signature(**feed), runs, warmup)
    return {
        "signature": name,
        "input_shapes": {k: v.shape.as_list() for k, v in feed.items()},
        **result,
    }


def benchmark(export_dir: str, runs: int, warmup: int, threads: int) -> dict:
    """`{artifact: latency}` for the SavedModel and every .tflite file."""
    import numpy as np

    if not os.path.isdir(os.path.join(export_dir, "saved_model")):
        raise FileNotFoundError(
            f"{export_dir} has no saved_model/: give a serving.export output directory."
        )
    rng = np.random.default_rng(0)
    results, fill = {}, ()
    for path in sorted(glob.glob(os.path.join(export_dir, "*.tflite"))):
        latency, shape = tflite_latency(path, runs, warmup, threads, rng)
        results[os.path.basename(path)] = {"input_shape": list(shape), **latency}
        fill = fill or shape[1:]
    results["saved_model"] = saved_model_latency(
        os.path.join(export_dir, "saved_model"), runs, warmup, fill, rng
    )
    return results


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags

    code = parse_flags(FLAGS, argv, __doc__, required=("export_dir",))
    if code is not None:
        return code
    from official.core.quiet_start import import_tensorflow_quietly
    from tools import benchmark_host

    # TensorFlow's default CPU kernels, as the model server runs them.
    import_tensorflow_quietly(inference_only=True)
    try:
        results = benchmark(
            FLAGS.export_dir, FLAGS.runs, FLAGS.warmup, FLAGS.num_threads
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    info = benchmark_host.host_info()
    print(
        f"Batch-1 latency, {FLAGS.runs} calls after {FLAGS.warmup} warm-up, on "
        f"{info['cpu_model']} ({', '.join(info['cpu_features'])}), {info['cores']} "
        f"core(s); TensorFlow oneDNN {benchmark_host.on_off(info['onednn'])}; LiteRT with "
        f"{FLAGS.num_threads} thread(s):"
    )
    for name, r in results.items():
        what = r.get("signature", "")
        print(
            f"  {name:<24} median {r['median_ms']:8.2f} ms   p90 {r['p90_ms']:8.2f} ms"
            + (f"   ({what})" if what else "")
        )
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump({"host": info, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
