"""Exports a trained causal LM: a keras-hub preset and a generating SavedModel.

Run:

    python tools/export_llm.py --checkpoint_path=runs/arith_sft \\
      --export_dir=exports/arith

The config is the run's `params.yaml` (then `--experiment`,
`--config_file`, `--params_override`, as for `serving.export`). The model is
restored with the run's `trainer.finetune` and LoRA adapters are merged into
the kernels. LoRA on an int8 base (`task.model.quantize=int8`) is exported as
trained: the SavedModel keeps the int8 kernels and the adapters unmerged;
the preset holds float weights (the dequantized base plus the adapters'
delta), since folding the adapters into int8 kernels would quantize them
again and lose most of the fine-tuning. Written atomically (a hidden sibling
directory, checked, then renamed; a failure leaves a previous export as it
was):

    export_dir/preset/        keras-hub preset of the merged model, tokenizer
                              and chat_template.json (CausalLM.from_preset)
    export_dir/saved_model/   signature `generate` (also serving_default):
                              prompts [n] string, max_new_tokens [n] int32,
                              temperature [n] float32, top_k [n] int32,
                              seed [n] int32 -> completions [n] string,
                              token_ids [n, m] int32, num_tokens [n] int32;
                              signature `generate_chat`: roles [n, t] and
                              contents [n, t] string (whole conversations,
                              padded with role ""), then the same settings
                              and outputs
    export_dir/parity.json    greedy tokens on the validation prompts, each
                              required identical: the SavedModel's two
                              signatures vs the trained model in process,
                              the reloaded preset vs its weights in process
                              (the trained model, or the float merge of an
                              int8 base); the preset's agreement with the
                              trained model is recorded too
    export_dir/export_report.json, params.yaml

`serving.export` is written around image signatures (one static input, a
TFLite file, image parity examples); a generate signature shares none of it,
so causal LMs have this tool instead and reuse its SavedModel writer and
atomic directory. The SavedModel tokenizes with keras-hub's ops
(tensorflow-text where the tokenizer uses it): the model server must import
tensorflow_text to load it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from absl import flags

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "checkpoint_path", None, "A model_dir or checkpoint prefix.", flag_values=FLAGS
)
flags.DEFINE_string("export_dir", None, "Local output directory.", flag_values=FLAGS)
flags.DEFINE_string(
    "experiment", None, "Default: found from params.yaml.", flag_values=FLAGS
)
flags.DEFINE_multi_string(
    "config_file", [], "YAML applied after params.yaml.", flag_values=FLAGS
)
flags.DEFINE_string(
    "params_override", "", "dotted.key=value overrides, last.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "num_parity_prompts", 8, "Validation prompts compared.", flag_values=FLAGS
)

PRESET_DIR = "preset"
SAVED_MODEL_DIR = "saved_model"


class LLMParityError(ValueError):
    """An exported artifact generates other tokens than the trained model."""


def export_llm(
    config, checkpoint_path: str, export_dir: str, num_parity_prompts: int = 8
) -> dict:
    """Writes preset, SavedModel and parity report; returns the report."""
    import tensorflow as tf

    from official.core import task_factory
    from official.llm.export import llm_export
    from official.llm.tasks.lm_generator import LMGenerator
    from serving import export_dir as export_dir_lib
    from serving import saved_model_export

    if num_parity_prompts < 1:
        raise ValueError(
            f"num_parity_prompts must be >= 1. Received: {num_parity_prompts}."
        )
    export_dir = os.path.abspath(export_dir)
    export_dir_lib.check_export_dir(export_dir)
    task = task_factory.get_task(config.task)
    model, prefix = llm_export.restore_for_export(task, config, checkpoint_path)
    prompts, _ = task.serving_examples(num_parity_prompts)
    if len(prompts) == 0:
        raise ValueError(
            "No validation conversation ends in an assistant turn: nothing to "
            "compare the export on."
        )
    prompts = [str(p) for p in prompts]
    max_new = config.task.generation.max_new_tokens
    signatures = task.serving_signatures(model)
    reference = llm_export.greedy_tokens(
        tf.function(signatures["generate"][0]), prompts, max_new
    )
    conversations = [
        (roles, contents)
        for roles, contents, _ in task.evaluation_prompts(num_parity_prompts)
    ]
    chat_reference = llm_export.greedy_chat_tokens(
        tf.function(signatures["generate_chat"][0]), conversations, max_new
    )
    lm, preset_weights = llm_export.preset_lm(task, model)
    pad_id = task.generator(model).pad_id

    def generate_fn(causal_lm):
        generator = LMGenerator(
            causal_lm,
            task.encoder(preprocessor=causal_lm.preprocessor),
            pad_id=pad_id,
            max_new_tokens_cap=max_new,
        )
        return tf.function(generator.signature()[0])

    # The preset's own weights in process: the trained model, or the float
    # merge of an int8 base and its adapters.
    preset_reference = (
        reference
        if lm is model.causal_lm
        else llm_export.greedy_tokens(generate_fn(lm), prompts, max_new)
    )
    tmp_dir = export_dir_lib.make_temp_dir(export_dir)
    try:
        preset_dir = llm_export.write_preset(
            task, lm, os.path.join(tmp_dir, PRESET_DIR)
        )
        saved_model_dir = os.path.join(tmp_dir, SAVED_MODEL_DIR)
        names = saved_model_export.write_saved_model(
            model, signatures, saved_model_dir, default="generate"
        )
        loaded = tf.saved_model.load(saved_model_dir)
        exported = llm_export.greedy_tokens(
            loaded.signatures["generate"], prompts, max_new
        )
        exported_chat = llm_export.greedy_chat_tokens(
            loaded.signatures["generate_chat"], conversations, max_new
        )
        import keras_hub

        reloaded = keras_hub.models.CausalLM.from_preset(preset_dir)
        preset_tokens = llm_export.greedy_tokens(
            generate_fn(reloaded), prompts, max_new
        )
        parity = {
            "prompts": prompts,
            "decoding": "greedy",
            "max_new_tokens": max_new,
            "saved_model": {
                "reference": "the trained model",
                "token_agreement": llm_export.compare_tokens(reference, exported),
            },
            "saved_model_chat": {
                "reference": "the trained model",
                "conversations": len(conversations),
                "token_agreement": llm_export.compare_tokens(
                    chat_reference, exported_chat
                ),
            },
            "preset": {
                "weights": preset_weights,
                "reference": (
                    "the trained model"
                    if lm is model.causal_lm
                    else "the same float weights in process"
                ),
                "token_agreement": llm_export.compare_tokens(
                    preset_reference, preset_tokens
                ),
                "trained_model_token_agreement": llm_export.compare_tokens(
                    reference, preset_tokens
                ),
            },
            "completions": [
                c.decode("utf-8", errors="replace") for c in exported["completions"]
            ],
        }
        tolerance = task.parity_tolerance("saved_model")
        failures = [
            f"{kind}: {', '.join(tolerance.check(parity[kind]))}"
            for kind in ("saved_model", "saved_model_chat", "preset")
            if tolerance.check(parity[kind])
        ]
        parity["passed"] = not failures
        with open(os.path.join(tmp_dir, "parity.json"), "w", encoding="utf-8") as f:
            json.dump(parity, f, indent=2)
        if failures:
            raise LLMParityError(
                "The export generates other tokens than the trained model: "
                + "; ".join(failures)
            )
        with open(os.path.join(tmp_dir, "params.yaml"), "w", encoding="utf-8") as f:
            f.write(config.to_yaml())
        report = {
            "export_dir": export_dir,
            "checkpoint": prefix,
            "signatures": names,
            "preset_files": llm_export.preset_files(preset_dir),
            "artifacts": [
                {
                    "path": name,
                    "bytes": export_dir_lib.size(os.path.join(tmp_dir, name)),
                }
                for name in sorted(os.listdir(tmp_dir))
            ],
            "parity": parity,
        }
        with open(
            os.path.join(tmp_dir, export_dir_lib.REPORT_FILE), "w", encoding="utf-8"
        ) as f:
            json.dump(report, f, indent=2)
        export_dir_lib.move_into_place(tmp_dir, export_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return report


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags

    code = parse_flags(FLAGS, argv, __doc__, required=("checkpoint_path", "export_dir"))
    if code is not None:
        return code
    import official.registry_imports  # noqa: F401  (fills the registries)
    from official.core.config_loader import load_experiment_config
    from serving import run_config

    try:
        config, source = run_config.load_run_config(
            FLAGS.checkpoint_path,
            FLAGS.experiment,
            FLAGS.config_file,
            FLAGS.params_override,
            load=load_experiment_config,
        )
        print(source, flush=True)
        report = export_llm(
            config, FLAGS.checkpoint_path, FLAGS.export_dir, FLAGS.num_parity_prompts
        )
    except (OSError, KeyError, TypeError, ValueError) as e:
        message = e.args[0] if len(e.args) == 1 else str(e)
        print(
            f"error: export failed; {FLAGS.export_dir!r} was not written or "
            f"changed: {type(e).__name__}: {message}",
            file=sys.stderr,
        )
        return 1
    parity = report["parity"]
    print(
        f"Exported {report['checkpoint']} to {report['export_dir']}: preset/ and "
        f"saved_model/ ({', '.join(report['signatures'])}); greedy token agreement "
        f"with the trained model on {len(parity['prompts'])} prompts: SavedModel "
        f"{parity['saved_model']['token_agreement']:.0%} (generate_chat "
        f"{parity['saved_model_chat']['token_agreement']:.0%}), preset "
        f"{parity['preset']['trained_model_token_agreement']:.0%} (preset "
        f"weights: {parity['preset']['weights']})."
    )
    return 0


if __name__ == "__main__":
    # Run from a checkout without installing: make `official` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
