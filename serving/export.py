"""Exporting a trained experiment: SavedModel, TFLite files and a parity report.

Run:

    python -m serving.export --checkpoint_path=runs/digits \\
      --export_dir=exports/digits \\
      --formats=saved_model,tflite,onnx --quantization=none,float16,dynamic,int8

The config is the run's own `runs/digits/params.yaml` (written by training);
`--experiment`, `--config_file` and `--params_override` apply on top of it,
and the log names every layer used (`serving/run_config.py`). Without a
`params.yaml` beside the checkpoint, `--experiment` is required; a config
without validation input is refused (parity needs examples).

Data flow: ExperimentConfig + checkpoint -> `task.build_model()` -> restore
(every model variable must match) -> `saved_model/` (one signature per input
type, the first also as `serving_default`, via `keras.export.ExportArchive`)
and `model_<float32|float16|dynamic|int8>.tflite` (from the task's
`tflite_signature`, int8 calibrated on the experiment's validation examples,
builtin ops only unless `--allow_flex_ops`, `--int8_io` choosing the int8
file's input/output type, each file run once with LiteRT), `model.onnx` with
`--formats=...,onnx` (the `onnx` extra; checked by onnx.checker and
onnxruntime) -> `parity.json` (Keras vs SavedModel vs TFLite vs ONNX on
`--num_parity_examples` validation examples, measured and bounded by the
task's parity hooks).

The export is atomic: everything is written into a hidden temporary directory
beside `export_dir`, checked, and only then renamed into place (replacing a
previous export there). If parity fails or anything raises, the temporary
directory is removed, a previous export is left as it was, and the binary exits
non-zero with the reason. `export_dir` must be a local path.

Layout:

    export_dir/saved_model/            signatures: image_tensor, image_bytes, ...
    export_dir/model_float32.tflite    (and _float16, _dynamic, _int8)
    export_dir/model.onnx              with --formats=...,onnx
    export_dir/parity.json             per-artifact differences and tolerances
    export_dir/export_report.json      every artifact with its size
    export_dir/params.yaml             the resolved experiment config
    export_dir/labels.txt              when the task has `class_names()`, one
                                       name per line, beside the .tflite files;
                                       also saved_model/assets.extra/labels.txt

A .tflite file with Flex ops (only with `--allow_flex_ops`) cannot run in the
LiteRT Python interpreter, which does not link the Flex delegate: it is listed
in `parity.json` under `unchecked` with its Flex ops, and in the report's
`tflite.flex_ops`, not compared.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from official.core.quiet_start import import_tensorflow_quietly

# Before anything imports TensorFlow: no CUDA-driver noise on a CPU machine,
# and TensorFlow's default CPU kernels (an export runs models, never trains).
import_tensorflow_quietly(inference_only=True)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import official.registry_imports  # noqa: E402, F401  (fills the registries)
from official.base.suggest import did_you_mean
from official.core import checkpoints, finetune, task_factory  # noqa: E402
from official.core.base_task import Task  # noqa: E402
from official.core.config_loader import load_experiment_config  # noqa: E402
from official.core.experiment_config import ExperimentConfig  # noqa: E402
from official.vision.tasks.image_signatures import (  # noqa: E402
    DEFAULT_MAX_IMAGE_PIXELS,
)
from serving import (  # noqa: E402
    onnx_export,
    parity,
    run_config,
    saved_model_export,
    tflite_export,
)
from serving.export_dir import (  # noqa: E402
    REPORT_FILE,
)
from serving.export_dir import (
    check_export_dir as _check_export_dir,
)
from serving.export_dir import (
    check_free_space as _check_free_space,
)
from serving.export_dir import (
    is_write_error as _is_write_error,
)
from serving.export_dir import (
    make_temp_dir as _make_temp_dir,
)
from serving.export_dir import (
    move_into_place as _move_into_place,
)
from serving.export_dir import (
    size as _size,
)
from serving.export_dir import (
    write_error as _write_error,
)
from serving.onnx_export import ONNXExportError  # noqa: E402
from serving.parity import ParityError  # noqa: E402
from serving.tflite_export import TFLiteExportError  # noqa: E402

FORMATS = ("saved_model", "tflite", "onnx")  # Valid choices.
DEFAULT_FORMATS = ("saved_model", "tflite")  # onnx needs the `onnx` extra.
QUANTIZATIONS = tflite_export.QUANTIZATIONS
INT8_IO = tflite_export.INT8_IO
LABELS_FILE = "labels.txt"
SAVED_MODEL_DIR = "saved_model"
PARITY_FILE = "parity.json"
_TFLITE_SOURCE = ".tflite_source_saved_model"  # scratch, removed before the move
# What writing a file raises: Python's, and TensorFlow's own writes (SavedModel).
_WRITE_ERRORS = (
    OSError,
    tf.errors.PermissionDeniedError,
    tf.errors.ResourceExhaustedError,
)

FLAGS = flags.FLAGS


def _check_choices(kind: str, values: Sequence[str], valid: Sequence[str]) -> list[str]:
    values = list(values)
    if not values:
        raise ValueError(f"No {kind} given. Valid: {', '.join(valid)}.")
    for value in values:
        if value not in valid:
            hint = did_you_mean(value, list(valid))
            raise ValueError(
                f"Unknown {kind} {value!r}.{hint} Valid: {', '.join(valid)}."
            )
    if len(set(values)) != len(values):
        raise ValueError(f"A {kind} is repeated. Received: {', '.join(values)}.")
    return values


def _checkpoint_step(prefix: str) -> int | None:
    try:
        return checkpoints.checkpoint_step(prefix)
    except (KeyError, ValueError, tf.errors.OpError):
        return None  # Not written by the trainer (no `step` variable).


def _class_names(task: Task) -> list[str]:
    """The optional `task.class_names()` hook (not part of the Task base)."""
    names = getattr(task, "class_names", None)
    names = [str(n) for n in names()] if callable(names) else []
    bad = [n for n in names if not n or "\n" in n]
    if bad:
        raise ValueError(
            f"task.class_names() must return non-empty one-line names (labels.txt "
            f"has one per line). Received: {bad[:3]!r}."
        )
    return names


def _serving_preprocessing(task: Task) -> dict[str, Any]:
    """The optional `task.serving_preprocessing()` hook: the resize/crop policy
    shared by the signatures and the TFLite file; empty without it."""
    hook = getattr(task, "serving_preprocessing", None)
    return dict(hook()) if callable(hook) else {}


def _write_labels(directory: str, class_names: Sequence[str]) -> str:
    """Writes `directory/labels.txt`, one class name per line; returns its path."""
    path = os.path.join(directory, LABELS_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(class_names) + "\n")
    return path


def export_experiment(
    config: ExperimentConfig,
    checkpoint_path: str,
    export_dir: str,
    input_types: Sequence[str] | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    quantizations: Sequence[str] = QUANTIZATIONS,
    num_parity_examples: int = 64,
    num_calibration_examples: int = 64,
    allow_flex_ops: bool = False,
    int8_io: str = "float32",
    max_image_pixels: int | None = None,
) -> dict[str, Any]:
    """Exports the experiment `config` restored from `checkpoint_path`.

    Builds `task_factory.get_task(config.task)` and calls `export_task`; see
    there for the arguments and the returned report. `params.yaml` holds the
    resolved config.
    """
    return export_task(
        task_factory.get_task(config.task),
        checkpoint_path,
        export_dir,
        input_types=input_types,
        formats=formats,
        quantizations=quantizations,
        num_parity_examples=num_parity_examples,
        num_calibration_examples=num_calibration_examples,
        allow_flex_ops=allow_flex_ops,
        int8_io=int8_io,
        config=config,
        max_image_pixels=max_image_pixels,
    )


def _serving_signatures(task: Task, model, max_image_pixels: int | None) -> dict:
    """`task.serving_signatures(model)`, with `max_image_pixels` when given.

    Image tasks (`official/vision/tasks/image_signatures.py`) take it and
    check it in the graph of `image_bytes` and `tf_example`; None leaves
    their default (40 MP).
    """
    if max_image_pixels is None:
        return task.serving_signatures(model)
    parameters = inspect.signature(task.serving_signatures).parameters
    if "max_image_pixels" not in parameters:
        raise ValueError(
            f"max_image_pixels={max_image_pixels} applies to tasks with encoded "
            f"image inputs; {type(task).__name__}.serving_signatures takes no "
            f"max_image_pixels. Drop --max_image_pixels."
        )
    if max_image_pixels < 0:
        raise ValueError(
            f"max_image_pixels must be >= 0 (0: no limit). Received: "
            f"{max_image_pixels}."
        )
    return task.serving_signatures(model, max_image_pixels=max_image_pixels)


def export_task(
    task: Task,
    checkpoint_path: str,
    export_dir: str,
    input_types: Sequence[str] | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    quantizations: Sequence[str] = QUANTIZATIONS,
    num_parity_examples: int = 64,
    num_calibration_examples: int = 64,
    allow_flex_ops: bool = False,
    int8_io: str = "float32",
    config: ExperimentConfig | None = None,
    max_image_pixels: int | None = None,
) -> dict[str, Any]:
    """Exports `task`'s model restored from `checkpoint_path` into `export_dir`.

    Args:
        task: the task whose `build_model`, `serving_signatures`,
            `tflite_signature` and `serving_examples` define the export.
        checkpoint_path: a checkpoint prefix, or a model_dir (its latest).
        export_dir: a local directory, written atomically (see the module
            docstring); an existing previous export there is replaced.
        input_types: SavedModel signatures to export, names from
            `task.serving_signatures`; the first is also `serving_default`.
            None: all of them, in the task's order.
        formats: any of `saved_model`, `tflite`, `onnx` (the `onnx` extra).
        quantizations: .tflite files to write, any of none (float32),
            float16, dynamic, int8; ignored without `tflite`.
        num_parity_examples: validation examples compared across artifacts.
        num_calibration_examples: validation examples calibrating int8 (taken
            after the parity examples when the split has enough).
        allow_flex_ops: let the TFLite converter use Select TF (Flex) ops;
            files that then hold Flex ops are written but not run (see the
            module docstring). Without it such a conversion fails naming the
            ops.
        int8_io: the int8 file's float input/output type: `float32`
            (quantized inside the file), `int8` or `uint8`.
        config: written to `params.yaml` when given.
        max_image_pixels: the most pixels an image given to the `image_bytes`
            and `tf_example` signatures may declare in its header, checked in
            the graph before decoding (InvalidArgument above); 0: no limit.
            None: the task's default (40 MP for image tasks).

    Returns:
        The report also written to `export_report.json`: `export_dir`,
        `checkpoint`, `step`, `signatures`, `artifacts` (`path` relative to
        `export_dir`, `bytes`), `labels` (the labels files written, empty
        when the task has no class names), `tflite` (`allow_flex_ops`,
        `flex_ops` per file, `int8_io`) and `parity` (the `parity.json`
        content).

    Raises:
        FileNotFoundError: no checkpoint at `checkpoint_path`.
        ValueError: a bad argument or a checkpoint that does not fit the model.
        TFLiteExportError: a conversion failed or a file does not run.
        ONNXExportError: tf2onnx failed or wrote a file that is invalid or
            does not run.
        ParityError: an artifact disagrees with Keras beyond tolerance.
    """
    formats = _check_choices("format", formats, FORMATS)
    quantizations = (
        _check_choices("quantization", quantizations, QUANTIZATIONS)
        if "tflite" in formats
        else []
    )
    if int8_io not in INT8_IO:
        raise ValueError(f"Unknown int8_io {int8_io!r}. Valid: {', '.join(INT8_IO)}.")
    if int8_io != "float32" and "int8" not in quantizations:
        raise ValueError(
            f"int8_io={int8_io!r} sets the input/output type of the int8 .tflite "
            f"file, which is not requested (formats {list(formats)}, quantizations "
            f"{quantizations}). Add int8 to --quantization or drop --int8_io."
        )
    if num_parity_examples < 1:
        raise ValueError(
            f"num_parity_examples must be >= 1. Received: {num_parity_examples}."
        )
    if "int8" in quantizations and num_calibration_examples < 1:
        raise ValueError(
            f"int8 quantization needs num_calibration_examples >= 1. Received: "
            f"{num_calibration_examples}."
        )
    export_dir = os.path.abspath(export_dir)
    _check_export_dir(export_dir)
    prefix = checkpoints.resolve_checkpoint(checkpoint_path)

    # ---- model ---------------------------------------------------------------
    model = task.build_model()
    tflite_fn, tflite_signature = task.tflite_signature(model)
    saved_model_export.check_input_signature("tflite", tflite_signature)
    if len(tflite_signature) != 1:
        raise ValueError(
            f"tflite_signature must have one input (the images); it has "
            f"{len(tflite_signature)}."
        )
    tflite_spec = tflite_signature[0]
    # Build every variable before restoring, so that the restore is checked.
    tflite_fn(tf.zeros(tflite_spec.shape, tflite_spec.dtype))
    # The run's trainer.finetune (frozen variables, LoRA adapters) shaped the
    # checkpoint; LoRA adapters are merged into the kernels once restored.
    run_finetune = (
        config.trainer.finetune if isinstance(config, ExperimentConfig) else None
    )
    finetune.prepare_export(model, run_finetune)
    checkpoints.restore_model(model, prefix)
    finetune.merge_adapters(model, prefix)
    logging.info(
        "Restored all %d model variables from %s.", len(model.variables), prefix
    )
    model_bytes = sum(
        int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in model.variables
    )
    _check_free_space(export_dir, model_bytes, len(quantizations) + ("onnx" in formats))

    all_signatures = _serving_signatures(task, model, max_image_pixels)
    input_types = _check_choices(
        "input type", input_types or list(all_signatures), list(all_signatures)
    )
    signatures = {name: all_signatures[name] for name in input_types}
    parity_signatures = dict(signatures)
    parity_signatures[saved_model_export.SERVING_DEFAULT] = signatures[input_types[0]]

    # ---- validation examples ---------------------------------------------------
    use_int8 = "int8" in quantizations
    wanted = num_parity_examples + (num_calibration_examples if use_int8 else 0)
    images, labels = task.serving_examples(wanted)
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) == 0:
        raise ValueError(
            "task.serving_examples returned no examples; check the validation data."
        )
    parity_images, parity_labels = (
        images[:num_parity_examples],
        labels[:num_parity_examples],
    )
    calibration = images[num_parity_examples:]
    calibration_disjoint = len(calibration) > 0
    if use_int8 and not calibration_disjoint:
        logging.warning(
            "The validation data has only %d examples: int8 calibration reuses the "
            "parity examples.",
            len(images),
        )
        calibration = images[:num_calibration_examples]

    # ---- write into a temporary directory, check, move ------------------------
    tmp_dir = _make_temp_dir(export_dir)
    try:
        class_names = _class_names(task)
        labels_files = []
        saved_model_dir = None
        if "saved_model" in formats:
            saved_model_dir = os.path.join(tmp_dir, SAVED_MODEL_DIR)
            names = saved_model_export.write_saved_model(
                model, signatures, saved_model_dir, default=input_types[0]
            )
            logging.info("SavedModel with signatures %s.", ", ".join(names))
            if class_names:
                labels_files.append(
                    saved_model_export.write_labels(saved_model_dir, class_names)
                )
        if class_names:
            labels_files.append(_write_labels(tmp_dir, class_names))

        tflite_files, flex_files = {}, {}
        if quantizations:
            source = tflite_export.write_source_saved_model(
                model,
                tflite_fn,
                tflite_signature,
                os.path.join(tmp_dir, _TFLITE_SOURCE),
            )
            expected = list(tflite_fn(tf.constant(parity_images[:1])).keys())
            for quantization in quantizations:
                content = tflite_export.convert(
                    source,
                    quantization,
                    {tflite_spec.name: calibration} if quantization == "int8" else None,
                    allow_flex_ops=allow_flex_ops,
                    int8_io=int8_io,
                )
                path = os.path.join(tmp_dir, tflite_export.FILE_NAMES[quantization])
                with open(path, "wb") as f:
                    f.write(content)
                needs_flex = tflite_export.flex_ops(content)
                if needs_flex:  # Only with allow_flex_ops; LiteRT cannot run it.
                    flex_files[os.path.basename(path)] = needs_flex
                    continue
                tflite_export.verify(
                    path, {tflite_spec.name: parity_images[:1]}, expected
                )
                tflite_files[quantization] = path
            shutil.rmtree(source)

        onnx_file = None
        if "onnx" in formats:
            onnx_file = onnx_export.convert(
                tflite_fn,
                tflite_signature,
                os.path.join(tmp_dir, onnx_export.FILE_NAME),
            )
            onnx_export.verify(
                onnx_file,
                parity_images[:1],
                list(tflite_fn(tf.constant(parity_images[:1])).keys()),
            )

        signature_inputs = task.parity_signature_inputs(len(parity_images))
        if input_types[0] in signature_inputs:
            signature_inputs[saved_model_export.SERVING_DEFAULT] = signature_inputs[
                input_types[0]
            ]
        report_parity = parity.check_parity(
            parity_images,
            parity_labels,
            parity_signatures if saved_model_dir else {},
            tflite_fn,
            saved_model_dir=saved_model_dir,
            tflite_files=tflite_files,
            onnx_file=onnx_file,
            signature_inputs=signature_inputs,
            measures=task.parity_measures,
            reference_measures=task.parity_reference_measures,
            tolerance_for=task.parity_tolerance,
        )
        preprocessing = _serving_preprocessing(task)
        if preprocessing:
            report_parity["preprocessing"] = preprocessing
        report_parity["calibration"] = {
            "num_examples": len(calibration) if use_int8 else 0,
            "disjoint_from_parity_examples": calibration_disjoint if use_int8 else None,
        }
        report_parity["unchecked"] = {
            name: (
                f"holds Select TF (Flex) ops {', '.join(ops)} (--allow_flex_ops); "
                f"the LiteRT Python interpreter does not link the Flex delegate"
            )
            for name, ops in flex_files.items()
        }
        parity.write_report(report_parity, os.path.join(tmp_dir, PARITY_FILE))
        if not report_parity["passed"]:
            logging.error("Parity with Keras:\n%s", parity.format_table(report_parity))
            raise ParityError(
                "Exported artifacts disagree with the Keras model (see the "
                "task's parity_tolerance; classification's are in "
                "official/vision/tasks/classification_parity.py):\n"
                + parity.failure_summary(report_parity)
            )

        if config is not None:
            with open(os.path.join(tmp_dir, "params.yaml"), "w", encoding="utf-8") as f:
                f.write(config.to_yaml())

        artifacts = [
            {"path": name, "bytes": _size(os.path.join(tmp_dir, name))}
            for name in sorted(os.listdir(tmp_dir))
        ]
        report = {
            "export_dir": export_dir,
            "checkpoint": prefix,
            "step": _checkpoint_step(prefix),
            "signatures": list(parity_signatures) if saved_model_dir else [],
            "artifacts": artifacts,
            "labels": [os.path.relpath(path, tmp_dir) for path in labels_files],
            "tflite": {
                "allow_flex_ops": allow_flex_ops,
                "flex_ops": flex_files,
                "int8_io": int8_io if "int8" in quantizations else None,
            },
            "preprocessing": preprocessing,
            "parity": report_parity,
        }
        with open(os.path.join(tmp_dir, REPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        _move_into_place(tmp_dir, export_dir)
    except _WRITE_ERRORS as e:  # A read-only or full disk: one line.
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not _is_write_error(e):
            raise
        raise _write_error(e, export_dir, tmp_dir) from e
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return report


def format_summary(report: dict[str, Any]) -> str:
    """The console summary: every artifact with its size, and parity."""
    lines = [f"Exported to {report['export_dir']} (checkpoint {report['checkpoint']}):"]
    for artifact in report["artifacts"]:
        path = os.path.join(report["export_dir"], artifact["path"])
        lines.append(f"  {path:60s} {artifact['bytes'] / 1e6:10.3f} MB")
    if report.get("labels"):
        lines.append(f"Labels: {', '.join(report['labels'])}")
    if report.get("preprocessing", {}).get("policy"):
        lines.append(
            f"Preprocessing (every signature): {report['preprocessing']['policy']}"
        )
    lines.append(f"Parity with Keras on {report['parity']['num_examples']} examples:")
    lines.append(parity.format_table(report["parity"]))
    for name, reason in report["parity"].get("unchecked", {}).items():
        lines.append(f"  {name:30s} NOT CHECKED: {reason}")
    return "\n".join(lines)


# ---- the binary --------------------------------------------------------------


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the binary's flags (not at import: official.train defines some too)."""
    flags.DEFINE_string(
        "experiment",
        None,
        "Registered experiment name. Default: found from the run's params.yaml.",
        flag_values=flag_values,
    )
    flags.DEFINE_multi_string(
        "config_file",
        [],
        "YAML file applied after the run's params.yaml (repeatable).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "params_override",
        "",
        "Comma-separated dotted.key=value overrides applied after the config files.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "checkpoint_path",
        None,
        "A checkpoint prefix (model_dir/ckpt-N) or a model_dir (its latest checkpoint).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "export_dir",
        None,
        "Local output directory, written atomically.",
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "input_type",
        None,
        "SavedModel signatures, e.g. image_tensor,image_bytes,tf_example; the "
        "first is also serving_default. Default: all the task offers.",
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "formats",
        list(DEFAULT_FORMATS),
        "Any of saved_model,tflite,onnx (onnx needs the `onnx` extra).",
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "quantization",
        list(QUANTIZATIONS),
        "TFLite files to write: any of none (float32),float16,dynamic,int8.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_parity_examples",
        64,
        "Validation examples compared across artifacts.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_calibration_examples",
        64,
        "Validation examples calibrating int8.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "allow_flex_ops",
        False,
        "Let TFLite files use Select TF (Flex) ops; they then need the Flex "
        "delegate at run time and are not run here. Without it such a "
        "conversion fails, naming the ops.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "int8_io",
        "float32",
        list(INT8_IO),
        "Input/output type of the int8 .tflite file's float tensors.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_image_pixels",
        DEFAULT_MAX_IMAGE_PIXELS,
        "Most pixels (width x height in the header) an image given to the "
        "image_bytes / tf_example signatures may declare; checked in the graph "
        "before decoding, so the SavedModel is safe behind any server. 0: no "
        "limit.",
        flag_values=flag_values,
    )


def main(argv: list[str], flag_values: flags.FlagValues = FLAGS) -> int:
    """Runs the export described by the flags; returns the exit code."""
    del argv
    fv = flag_values
    for name in ("checkpoint_path", "export_dir"):
        if not fv[name].value:
            raise app.UsageError(f"--{name} is required.")
    try:
        config, config_source = run_config.load_run_config(
            fv.checkpoint_path,
            fv.experiment,
            fv.config_file,
            fv.params_override,
            load=load_experiment_config,
        )
        print(config_source, flush=True)
        report = export_experiment(
            config,
            fv.checkpoint_path,
            fv.export_dir,
            input_types=fv.input_type,
            formats=fv.formats,
            quantizations=fv.quantization,
            num_parity_examples=fv.num_parity_examples,
            num_calibration_examples=fv.num_calibration_examples,
            allow_flex_ops=fv.allow_flex_ops,
            int8_io=fv.int8_io,
            max_image_pixels=(
                fv.max_image_pixels if fv["max_image_pixels"].present else None
            ),
        )
    except (
        OSError,  # FileNotFoundError, FileExistsError, ExportWriteError, ...
        KeyError,
        TypeError,
        ValueError,
        TFLiteExportError,
        ONNXExportError,
        ParityError,
    ) as e:
        message = e.args[0] if len(e.args) == 1 else str(e)  # OSError(errno, ...)
        print(
            f"error: export failed; {fv.export_dir!r} was not written or changed: "
            f"{type(e).__name__}: {message}",
            file=sys.stderr,
        )
        return 1
    print(format_summary(report))
    return 0


def run() -> None:
    """Console-script entry point (`garden-export`)."""
    # `--help` prints the __main__ module's docstring: make it this one's.
    sys.modules["__main__"].__doc__ = __doc__
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
