"""Train and validation curves of a run, as one PNG, from its TensorBoard events.

Examples:
    python tools/plot_curves.py --model_dir=runs/digits
    python tools/plot_curves.py --model_dir=runs/digits --metrics=loss,accuracy \\
      --output=/tmp/digits_curves.png

The trainer writes scalars with `tf.summary.scalar` to `model_dir/train/` and
`model_dir/validation/`. Every scalar tag becomes one subplot (or only those
named by `--metrics`), with the train and validation curves overlaid against
the step. When a step was written more than once (a run resumed from an
earlier checkpoint), the value written last wins. Needs matplotlib
(`pip install matplotlib`).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

# Flags live in their own FlagValues, so that importing this module (tests)
# never clashes with other binaries' flags in the same process.
FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "model_dir",
    None,
    "The run's model_dir (holds train/ and validation/).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "output",
    None,
    "Where the PNG goes. Default: MODEL_DIR/curves.png.",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "metrics",
    [],
    "Comma-separated scalar tags to plot, e.g. loss,accuracy. Default: every "
    "scalar tag found.",
    flag_values=FLAGS,
)

SPLITS = ("train", "validation")
_STYLE = {
    "train": dict(color="tab:blue"),
    "validation": dict(color="tab:orange", marker="o"),
}
_MATPLOTLIB_HINT = (
    "tools/plot_curves.py needs matplotlib, which is not installed. Install it "
    "with: pip install matplotlib (in this checkout: .venv/bin/pip install matplotlib)."
)

# {metric: {split: [(step, value), ...]}}, steps ascending.
Curves = dict[str, dict[str, list[tuple[int, float]]]]


def _creation_key(path: str) -> tuple[int, str]:
    stamp = os.path.basename(path).split(".")[3]
    return (int(stamp) if stamp.isdigit() else 0, path)


def event_files(model_dir: str) -> dict[str, list[str]]:
    """The event files of each split present under `model_dir`, oldest first."""
    import tensorflow as tf

    found = {}
    for split in SPLITS:
        pattern = os.path.join(model_dir, split, "events.out.tfevents.*")
        # events.out.tfevents.<seconds>.<host>...: oldest first.
        files = sorted(tf.io.gfile.glob(pattern), key=_creation_key)
        if files:
            found[split] = files
    return found


def _scalar_of(value) -> float | None:
    """The float of one summary value, or None when it is not a scalar."""
    import tensorflow as tf

    kind = value.WhichOneof("value")
    if kind == "simple_value":  # TF1-style summaries
        return float(value.simple_value)
    if kind == "tensor":  # tf.summary.scalar in TF2
        array = tf.make_ndarray(value.tensor)
        if array.ndim == 0 and array.dtype.kind in "fiub":
            return float(array)
    return None


def _read_file(path: str, into: dict[str, dict[int, float]]) -> None:
    import tensorflow as tf
    from absl import logging

    records = iter(tf.data.TFRecordDataset(path))
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except tf.errors.DataLossError:
            # A writer killed mid-record leaves a truncated tail.
            logging.warning("Skipping the truncated end of %s.", path)
            return
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            scalar = _scalar_of(value)
            if scalar is not None:
                into.setdefault(value.tag, {})[int(event.step)] = scalar


def read_curves(model_dir: str) -> Curves:
    """Every scalar of the run, by metric and split.

    Args:
        model_dir: str, the run's directory (with `train/`, `validation/`).

    Returns:
        `{metric: {split: [(step, value), ...]}}` with steps ascending; a
        split is absent for a metric it never wrote.

    Raises:
        FileNotFoundError: no event file in `model_dir/train` nor
            `model_dir/validation`.
    """
    files = event_files(model_dir)
    if not files:
        dirs = " or ".join(os.path.join(model_dir, s) for s in SPLITS)
        raise FileNotFoundError(
            f"No TensorBoard event files (events.out.tfevents.*) in {dirs}. "
            f"Is --model_dir={model_dir} the model_dir of a training run?"
        )
    curves: Curves = {}
    for split, paths in files.items():
        by_tag: dict[str, dict[int, float]] = {}
        for path in paths:
            _read_file(path, by_tag)
        for tag, points in by_tag.items():
            curves.setdefault(tag, {})[split] = sorted(points.items())
    return curves


def select_metrics(curves: Curves, metrics: list[str] | None) -> list[str]:
    """`metrics` checked against the tags found, or every tag (loss first)."""
    found = sorted(curves, key=lambda tag: (tag != "loss", tag))
    if not metrics:
        return found
    unknown = [m for m in metrics if m not in curves]
    if unknown:
        raise KeyError(
            f"--metrics names tag(s) the run did not write: {', '.join(unknown)}. "
            f"Scalars found: {', '.join(found)}."
        )
    return list(metrics)


def _figure_module():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(_MATPLOTLIB_HINT) from None
    return Figure, FigureCanvasAgg


def draw(curves: Curves, metrics: list[str], output: str, title: str = "") -> None:
    """Writes a PNG with one subplot per metric, train and validation overlaid."""
    Figure, FigureCanvasAgg = _figure_module()
    from matplotlib.ticker import MaxNLocator

    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure = Figure(figsize=(4.5 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for split in SPLITS:
            points = curves[metric].get(split)
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, label=split, **_STYLE[split])
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    directory = os.path.dirname(output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(output, format="png", dpi=100)


def plot_curves(
    model_dir: str, output: str | None = None, metrics: list[str] | None = None
) -> Curves:
    """Reads a run's scalars and writes their curves as a PNG.

    Args:
        model_dir: str, the run's directory.
        output: str, the PNG path; default `model_dir/curves.png`.
        metrics: list of scalar tags to plot; default every tag found.

    Returns:
        The plotted curves, `{metric: {split: [(step, value), ...]}}`.
    """
    _figure_module()  # fail on a missing matplotlib before reading anything
    curves = read_curves(model_dir)
    selected = select_metrics(curves, metrics)
    draw(
        curves,
        selected,
        output or os.path.join(model_dir, "curves.png"),
        title=os.path.basename(os.path.normpath(model_dir)),
    )
    return {metric: curves[metric] for metric in selected}


def main(argv: list[str]) -> int:
    """Parses `argv` (program name first), writes the PNG; returns the exit code."""
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    if not FLAGS.model_dir:
        print(
            "error: --model_dir is required (e.g. --model_dir=runs/digits).",
            file=sys.stderr,
        )
        return 2
    output = FLAGS.output or os.path.join(FLAGS.model_dir, "curves.png")
    try:
        curves = plot_curves(FLAGS.model_dir, output, FLAGS.metrics)
    except (ImportError, FileNotFoundError, KeyError) as e:
        message = e.args[0] if e.args else str(e)
        print(f"error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    for metric, splits in curves.items():
        counts = ", ".join(
            f"{split} {len(points)} points" for split, points in splits.items()
        )
        print(f"{metric}: {counts}")
    print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    # Run from a checkout without installing: make `tools` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from official.core.quiet_start import import_tensorflow_quietly

    import_tensorflow_quietly()
    sys.exit(main(sys.argv))
