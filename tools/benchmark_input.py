"""Images/s of an experiment's train input pipeline against a plain tf.data one.

    python tools/benchmark_input.py --experiment=resnet_imagenet
    python tools/benchmark_input.py --experiment=resnet_imagenet \\
      --input_path='/data/imagenet/train-*' --batch_size=128 --num_batches=50

Both pipelines read the same TFRecord files in the same run, at the
experiment's input size, and are measured in alternation (`--repeats` rounds),
one at a time (a fresh iterator per round, `--warmup_batches` batches before
timing, the iterator deleted after); the median round is reported:

- `experiment`: `task.build_inputs(task.train_data)`, everything the
  experiment configures (decode-and-crop of JPEGs, flip, augmentation,
  normalization, the corrupt-record guard);
- `plain`: a hand-written pipeline: interleaved TFRecords, shuffle, repeat,
  `decode_jpeg` of the whole image, random crop
  (`sample_distorted_bounding_box`), flip, bilinear resize, batch, prefetch;
- `experiment_image_folder` (only with generated data): the experiment's
  pipeline reading the JPEG files directly (`input_format=image_folder`).

Each pipeline also reports the CPU time of the process per image (median of
the rounds), which varies less than images/s on a shared machine.

Without `--input_path`, `--num_images` JPEGs of about `--image_height` x
`--image_width` pixels (official.datasets.synthetic) are written to a
temporary folder and converted to 8 TFRecord shards. `--model_steps` also
times the experiment's model training steps (forward, backward, SGD update)
at `--model_batch_size`, to compare what the model consumes with what the
input delivers.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "experiment", "resnet_imagenet", "Registered experiment.", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "config_file", [], "YAML applied to the experiment.", flag_values=FLAGS
)
flags.DEFINE_string(
    "params_override", "", "dotted.key=value overrides.", flag_values=FLAGS
)
flags.DEFINE_string(
    "input_path",
    "",
    "TFRecord glob(s); empty writes synthetic JPEGs.",
    flag_values=FLAGS,
)
flags.DEFINE_integer("num_images", 500, "Synthetic images to write.", flag_values=FLAGS)
flags.DEFINE_integer("image_height", 350, "Synthetic image height.", flag_values=FLAGS)
flags.DEFINE_integer("image_width", 400, "Synthetic image width.", flag_values=FLAGS)
flags.DEFINE_integer(
    "batch_size", 64, "Global batch size of both pipelines.", flag_values=FLAGS
)
flags.DEFINE_integer("num_batches", 30, "Batches timed per round.", flag_values=FLAGS)
flags.DEFINE_integer(
    "warmup_batches", 5, "Batches read before timing.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "repeats", 3, "Rounds of alternating measurements.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "model_steps", 0, "Train steps of the model to time (0: skip).", flag_values=FLAGS
)
flags.DEFINE_integer(
    "model_batch_size", 16, "Batch size of the model steps.", flag_values=FLAGS
)
flags.DEFINE_string(
    "output_json", "", "Also write the results here.", flag_values=FLAGS
)


def write_synthetic_tfrecords(
    folder: str, output_dir: str, num_images: int, size: tuple[int, int]
) -> str:
    """Synthetic JPEG folder -> 8 TFRecord shards; returns their glob."""
    from official.core.input_files import list_image_folders
    from official.datasets import tfrecord_writer as tw
    from official.datasets.image_files import load_image_file
    from official.datasets.synthetic import write_synthetic_image_folder

    write_synthetic_image_folder(folder, num_images, size, 10, seed=0, size_jitter=0.15)
    listing = list_image_folders([folder])[0]
    with tw.ShardedTFRecordWriter(output_dir, "train", 8) as writer:
        for path, label in zip(listing.paths, listing.labels):
            image = load_image_file(path)
            writer.write(
                tw.example(
                    {
                        "image/encoded": tw.bytes_feature(image.data),
                        "image/format": tw.bytes_feature(image.format),
                        "image/class/label": tw.int64_feature(label),
                    }
                )
            )
    return os.path.join(output_dir, "train-*.tfrecord")


def plain_pipeline(input_path: str, batch_size: int, image_size: tuple[int, int]):
    """The hand-written baseline: decode, random crop, flip, resize."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(input_path))
    features = {
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/class/label": tf.io.FixedLenFeature((), tf.int64),
    }

    def parse(record):
        parsed = tf.io.parse_single_example(record, features)
        image = tf.io.decode_jpeg(parsed["image/encoded"], channels=3)
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
            min_object_covered=0.08,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0),
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        image = tf.image.random_flip_left_right(tf.slice(image, begin, size))
        image = tf.image.resize(image, image_size)
        return image, parsed["image/class/label"]

    dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files)).repeat()
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    dataset = dataset.shuffle(1000)
    dataset = dataset.map(
        parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def images_per_second(
    iterator, batch_size: int, num_batches: int
) -> tuple[float, float]:
    """`(images/s, CPU ms of this process per image)` over `num_batches`."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(num_batches):
        next(iterator)
    images = num_batches * batch_size
    cpu_ms = (time.process_time() - cpu_start) * 1000.0 / images
    return images / (time.perf_counter() - start), cpu_ms


def time_model(task, params, batch_size: int, steps: int) -> float:
    """Images/s of the model's train steps on random inputs (after one step)."""
    import keras
    import tensorflow as tf

    height, width, channels = params.task.model.input_size
    model = task.build_model()
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    images = tf.random.normal([batch_size, height, width, channels])
    labels = tf.zeros([batch_size], tf.int32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = task.build_losses(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step().numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.numpy()
    return steps * batch_size / (time.perf_counter() - start)


def run_benchmark() -> dict:
    import tensorflow as tf

    import official.registry_imports  # noqa: F401
    from official.core import task_factory
    from official.core.config_loader import load_experiment_config

    scratch = tempfile.mkdtemp(prefix="benchmark_input_")
    folder = ""
    input_path = FLAGS.input_path
    if not input_path:
        folder = os.path.join(scratch, "images")
        size = (FLAGS.image_height, FLAGS.image_width)
        print(f"Writing {FLAGS.num_images} synthetic JPEGs of ~{size[0]}x{size[1]} ...")
        input_path = write_synthetic_tfrecords(
            folder, os.path.join(scratch, "records"), FLAGS.num_images, size
        )
    params = load_experiment_config(
        FLAGS.experiment, FLAGS.config_file, FLAGS.params_override or None
    )
    height, width, _ = params.task.model.input_size
    task = task_factory.get_task(params.task)

    def experiment_data(**changes):
        data = params.task.train_data.copy()
        data.input_path = input_path
        data.global_batch_size = FLAGS.batch_size
        for key, value in changes.items():
            setattr(data, key, value)
        data.validate("task.train_data")
        return data

    pipelines = {
        "experiment": task.build_inputs(experiment_data()),
        "plain": plain_pipeline(input_path, FLAGS.batch_size, (height, width)),
    }
    if folder:
        pipelines["experiment_image_folder"] = task.build_inputs(
            experiment_data(input_path=folder, input_format="image_folder")
        )
    rounds = {name: [] for name in pipelines}
    cpu = {name: [] for name in pipelines}
    for _ in range(FLAGS.repeats):
        for name, dataset in pipelines.items():
            # One pipeline at a time: an idle iterator would keep filling its
            # buffers in the background and take CPU from the one measured.
            iterator = iter(dataset)
            for _ in range(FLAGS.warmup_batches):
                next(iterator)
            rate, cpu_ms = images_per_second(
                iterator, FLAGS.batch_size, FLAGS.num_batches
            )
            rounds[name].append(rate)
            cpu[name].append(cpu_ms)
            del iterator
            gc.collect()
    results = {
        "experiment": FLAGS.experiment,
        "input_path": input_path,
        "image_size": [height, width],
        "batch_size": FLAGS.batch_size,
        "num_batches": FLAGS.num_batches,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "tensorflow": tf.__version__,
        "images_per_second": {n: statistics.median(r) for n, r in rounds.items()},
        "cpu_ms_per_image": {n: statistics.median(c) for n, c in cpu.items()},
        "rounds": rounds,
    }
    if FLAGS.model_steps:
        results["model_images_per_second"] = time_model(
            task, params, FLAGS.model_batch_size, FLAGS.model_steps
        )
    return results


def format_results(results: dict) -> str:
    rates = results["images_per_second"]
    lines = [
        f"{results['experiment']}: batch {results['batch_size']} at "
        f"{results['image_size'][0]}x{results['image_size'][1]}, {results['cpu_count']} "
        f"CPUs, load {results['load_average'][0]:.1f}, TF {results['tensorflow']}"
    ]
    for name, rate in rates.items():
        rounds = ", ".join(f"{r:.0f}" for r in results["rounds"][name])
        cpu_ms = results["cpu_ms_per_image"][name]
        lines.append(
            f"  {name:24s} {rate:8.0f} images/s  {cpu_ms:5.2f} CPU ms/image  "
            f"(rounds: {rounds})"
        )
    lines.append(f"  experiment / plain: {rates['experiment'] / rates['plain']:.2f}x")
    if "model_images_per_second" in results:
        model = results["model_images_per_second"]
        lines.append(
            f"  model train steps        {model:8.1f} images/s "
            f"(input is {rates['experiment'] / model:.0f}x faster)"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    try:
        results = run_benchmark()
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if e.args else str(e)
        print(f"error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    print(format_results(results))
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
