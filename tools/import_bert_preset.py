"""A keras-hub BERT preset directory -> a Garden encoder checkpoint + vocab.txt.

    python tools/import_bert_preset.py --preset_dir=/presets/bert_base_en_uncased \\
      --output_dir=/weights/bert_base_en_uncased

Reads the preset with keras-hub (extra `hub`; a local directory, nothing is
downloaded), copies its `BertBackbone` weights onto Garden's `BertEncoder`
(`official/nlp/importers/keras_hub_bert.py`), runs both on random ids and
refuses to write when their outputs differ by more than 1e-5 x the output
scale. Written to `output_dir`:

- `encoder-1.index`, `encoder-1.data-*`: `tf.train.Checkpoint(model=
  tf.train.Checkpoint(backbone=encoder))`, which fine-tuning restores with
  `trainer.init_checkpoint=OUTPUT_DIR/encoder-1` and
  `trainer.init_checkpoint_modules=backbone`;
- `vocab.txt` (`task.preprocessing.vocab_file`);
- `encoder.json`: the `task.model.encoder.params` and
  `task.preprocessing.lower_case` to set, and the measured difference.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    "preset_dir", None, "keras-hub preset directory.", flag_values=FLAGS
)
flags.DEFINE_string("output_dir", None, "Where to write.", flag_values=FLAGS)
flags.DEFINE_integer(
    "check_length", 32, "Sequence length of the equality check.", flag_values=FLAGS
)

TOLERANCE = 1e-5


def run(preset_dir: str, output_dir: str, check_length: int = 32) -> dict:
    """Imports, checks and writes; returns the summary also in encoder.json."""
    import numpy as np
    import tensorflow as tf

    from official.nlp.importers.keras_hub_bert import (
        import_bert_preset,
        max_output_difference,
    )
    from official.nlp.tokenization.vocabulary import write_vocabulary

    imported = import_bert_preset(preset_dir)
    length = min(check_length, imported.encoder.max_sequence_length)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, len(imported.vocabulary), size=(2, length))
    ids[:, 0] = imported.vocabulary.index("[CLS]")
    ids[1, length // 2 :] = 0
    difference = max_output_difference(imported, ids)
    scale = max(
        1.0,
        float(
            np.max(
                np.abs(
                    imported.encoder(
                        {
                            "input_word_ids": ids.astype("int32"),
                            "input_mask": (ids != 0).astype("int32"),
                            "input_type_ids": np.zeros_like(ids, "int32"),
                        }
                    )["sequence_output"]
                )
            )
        ),
    )
    if not difference <= TOLERANCE * scale:
        raise ValueError(
            f"The imported encoder's outputs differ from keras-hub's by {difference:.3g} "
            f"(allowed {TOLERANCE:g} x {scale:.3g}); nothing written."
        )
    os.makedirs(output_dir, exist_ok=True)
    checkpoint = tf.train.Checkpoint(
        model=tf.train.Checkpoint(backbone=imported.encoder)
    )
    prefix = checkpoint.write(os.path.join(output_dir, "encoder-1"))
    write_vocabulary(imported.vocabulary, os.path.join(output_dir, "vocab.txt"))
    summary = {
        "checkpoint": prefix,
        "vocab_file": os.path.join(output_dir, "vocab.txt"),
        "encoder_params": imported.encoder_params,
        "lower_case": imported.lower_case,
        "vocab_size": len(imported.vocabulary),
        "max_abs_difference": difference,
    }
    with open(os.path.join(output_dir, "encoder.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    code = parse_flags(FLAGS, argv, __doc__, required=("preset_dir", "output_dir"))
    if code is not None:
        return code
    return run_and_report(
        lambda: run(FLAGS.preset_dir, FLAGS.output_dir, FLAGS.check_length),
        lambda s: (
            f"Imported {FLAGS.preset_dir}: checkpoint {s['checkpoint']}, vocab "
            f"{s['vocab_size']} tokens, max |Garden - keras-hub| = "
            f"{s['max_abs_difference']:.2g}. Encoder params: "
            f"{json.dumps(s['encoder_params'])}, lower_case={s['lower_case']}."
        ),
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
