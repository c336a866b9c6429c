"""Publishes a Garden run's weights as one archive and a manifest entry.

Example:
    python tools/publish_weights.py --checkpoint_path=runs/digits \\
      --name=resnet_digits.demo --output_dir=published \\
      --url_prefix=https://weights.example.com/garden/ \\
      --license="CC-BY-4.0; trained on the embedded digits data"

The model is built from the run's `params.yaml` (as the export does; or
`--experiment`, `--config_file`, `--params_override`) and restored from the
checkpoint (the moving averages when the run kept them); its variables alone
(no optimizer state) are written as a TF checkpoint and packed with a
`weights.json` into `OUTPUT_DIR/NAME.tar`. Its entry (name, url, sha256,
size, experiment, the run's `task.model` config, licence note) is printed
and added to `--manifest` (default `OUTPUT_DIR/manifest.json`). Copy
OUTPUT_DIR to any web server or bucket under `--url_prefix` (without one the
manifest names the archive relative to itself, so the directory works as it
is); others then train from the weights by name:

    GARDEN_MANIFESTS=published/manifest.json python -m official.train ... \\
      --params_override=trainer.init_checkpoint=store:resnet_digits.demo
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "checkpoint_path",
    None,
    "A training run's model_dir (its latest checkpoint) or a checkpoint prefix.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "name",
    None,
    "The weights' name, arch.tag (e.g. resnet50.imagenet).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "output_dir", None, "Where NAME.tar (and the manifest) go.", flag_values=FLAGS
)
flags.DEFINE_string(
    "license",
    None,
    "Licence and provenance note of the weights (and their training data).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "url_prefix",
    "",
    "URL under which OUTPUT_DIR will be hosted (https://, gs://, file://); "
    "empty: the manifest names the archive relative to itself.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "manifest",
    "",
    "Manifest to add the entry to (default OUTPUT_DIR/manifest.json).",
    flag_values=FLAGS,
)
flags.DEFINE_string("description", "", "Free text for the entry.", flag_values=FLAGS)
flags.DEFINE_bool(
    "replace",
    False,
    "Replace an entry of the same name in the manifest.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "experiment",
    None,
    "The run's experiment (default: from params.yaml).",
    flag_values=FLAGS,
)
flags.DEFINE_multi_string(
    "config_file", [], "YAML files applied after params.yaml.", flag_values=FLAGS
)
flags.DEFINE_string(
    "params_override", "", "Dotted overrides applied last.", flag_values=FLAGS
)


def load_config(checkpoint_path: str, experiment, config_files, params_override):
    """The run's config and its experiment name (params.yaml, as the export)."""
    from official.base.config import ConfigError
    from official.core.config_loader import load_experiment_config
    from serving import run_config

    run_params = run_config.params_file(checkpoint_path)
    if not experiment:
        if run_params is None:
            raise ConfigError(
                f"{checkpoint_path!r} has no params.yaml beside it (training writes "
                "one into its model_dir) and no --experiment was given. Pass "
                "--checkpoint_path=MODEL_DIR of a training run, or --experiment."
            )
        experiment = run_config.recorded_experiment(
            run_params
        ) or run_config.experiment_for_params(run_params)
    layers = ([run_params] if run_params else []) + list(config_files)
    return load_experiment_config(experiment, layers, params_override), experiment


def publish(
    checkpoint_path: str,
    name: str,
    output_dir: str,
    license: str,
    url_prefix: str = "",
    manifest: str = "",
    description: str = "",
    replace: bool = False,
    experiment: str | None = None,
    config_files=(),
    params_override: str = "",
) -> dict:
    """Writes OUTPUT_DIR/NAME.tar, adds its entry to the manifest; returns it."""
    import tensorflow as tf

    import official.registry_imports  # noqa: F401
    from official.core import (
        checkpoints,
        finetune,
        model_store,
        task_factory,
        weights_archive,
    )

    manifest = manifest or os.path.join(output_dir, "manifest.json")
    _check_early(name, license, manifest, replace)
    config, experiment = load_config(
        checkpoint_path, experiment, config_files, params_override
    )
    model = task_factory.get_task(config.task).build_model()
    # As the export does: the run's frozen variables and LoRA adapters shape
    # the checkpoint; adapters are merged into the published kernels.
    finetune.prepare_export(model, config.trainer.finetune)
    prefix = checkpoints.restore_model(model, checkpoint_path)
    finetune.merge_adapters(model, prefix)
    task = config.as_dict()["task"]
    model_config = {"task": {"model": task["model"]}} if "model" in task else {}
    os.makedirs(output_dir, exist_ok=True)
    archive = os.path.join(output_dir, f"{name}.tar")
    with tempfile.TemporaryDirectory() as tmp:
        with checkpoints.without_save_notices():
            written = tf.train.Checkpoint(model=model).write(
                os.path.join(tmp, weights_archive.CHECKPOINT_NAME)
            )
        metadata = {
            "name": name,
            "experiment": experiment,
            "config": model_config,
            "license": license,
            "source_checkpoint": prefix,
            "step": _step(prefix),
            "variables": len(model.weights),
        }
        sha256, size = weights_archive.write_archive(written, archive, metadata)
    if url_prefix:
        url = url_prefix.rstrip("/") + f"/{name}.tar"
    else:
        url = os.path.relpath(archive, os.path.dirname(os.path.abspath(manifest)))
    entry = model_store.entry_from_dict(
        {
            "name": name,
            "url": url,
            "sha256": sha256,
            "size": size,
            "experiment": experiment,
            "config": model_config,
            "license": license,
            **({"description": description} if description else {}),
        },
        "the new entry",
    )
    model_store.add_to_manifest(manifest, entry, replace=replace)
    return {"archive": archive, "manifest": manifest, "entry": entry.as_dict()}


def _check_early(name: str, license: str, manifest: str, replace: bool) -> None:
    """Refuses a bad name or licence, or a taken name, before any work."""
    from official.core import model_store

    placeholders = {"url": "-", "sha256": "0" * 64, "size": 1, "experiment": "-"}
    model_store.entry_from_dict(
        {"name": name, "license": license, "config": {}, **placeholders},
        "--name/--license",
    )
    if os.path.exists(manifest) and not replace:
        if any(e.name == name for e in model_store.load_manifest(manifest)):
            raise ValueError(
                f"Manifest {manifest} already lists weights {name!r}; pick another "
                "--name or pass --replace to overwrite its entry and archive."
            )


def _step(prefix: str) -> int | None:
    import tensorflow as tf

    from official.core import checkpoints

    try:
        return checkpoints.checkpoint_step(prefix)
    except (ValueError, KeyError, tf.errors.OpError):  # No trainer step in it.
        return None


def describe(result: dict) -> str:
    return (
        json.dumps(result["entry"], indent=2)
        + f"\nWrote {result['archive']}; added the entry to {result['manifest']}."
    )


def main(argv: list[str]) -> int:
    """Parses `argv` (program name first), publishes; returns the exit code."""
    from tools.tool_flags import parse_flags, run_and_report

    required = ("checkpoint_path", "name", "output_dir", "license")
    exit_code = parse_flags(FLAGS, argv, __doc__, required=required)
    if exit_code is not None:
        return exit_code

    def run():
        return publish(
            FLAGS.checkpoint_path,
            FLAGS.name,
            FLAGS.output_dir,
            FLAGS.license,
            url_prefix=FLAGS.url_prefix,
            manifest=FLAGS.manifest,
            description=FLAGS.description,
            replace=FLAGS.replace,
            experiment=FLAGS.experiment,
            config_files=FLAGS.config_file,
            params_override=FLAGS.params_override,
        )

    return run_and_report(run, describe)


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
