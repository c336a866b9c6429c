"""A text corpus -> a WordPiece vocabulary (vocab.txt) for Garden's tokenizer.

    python tools/build_wordpiece_vocab.py --input_path=corpus/*.txt \\
      --output=vocab.txt --vocab_size=8000

Reads the texts (`--file_format`: txt, one text per line; or tsv/csv/jsonl
with `--text_keys`), splits them into words as BERT does (lower-cased and
accent-stripped with `--lower_case`, punctuation and CJK characters split)
and learns the WordPiece vocabulary with tensorflow-text's
`bert_vocab_from_dataset`. The file starts with `[PAD] [UNK] [CLS] [SEP]
[MASK]`; set `task.preprocessing.vocab_file` to it (and the same
`lower_case`).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("input_path", None, "Corpus file glob(s).", flag_values=FLAGS)
flags.DEFINE_enum(
    "file_format", "txt", ["txt", "tsv", "csv", "jsonl"], "Format.", flag_values=FLAGS
)
flags.DEFINE_list(
    "text_keys", ["text"], "Text columns (not for txt).", flag_values=FLAGS
)
flags.DEFINE_string("output", None, "The vocab.txt to write.", flag_values=FLAGS)
flags.DEFINE_integer("vocab_size", 8000, "Target vocabulary size.", flag_values=FLAGS)
flags.DEFINE_bool("lower_case", True, "Lower-case, strip accents.", flag_values=FLAGS)


def build_vocab(
    input_path: str,
    output: str,
    vocab_size: int = 8000,
    file_format: str = "txt",
    text_keys: list[str] | None = None,
    lower_case: bool = True,
) -> dict:
    """Learns and writes the vocabulary; returns a summary."""
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset import (
        bert_vocab_from_dataset,
    )

    from official.nlp.dataloaders.text_files import read_rows
    from official.nlp.dataloaders.text_input import match_text_files
    from official.nlp.tokenization.vocabulary import (
        SPECIAL_TOKENS,
        check_vocabulary,
        write_vocabulary,
    )

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size must be > {len(SPECIAL_TOKENS)} (the special tokens). "
            f"Received: {vocab_size}."
        )
    keys = ["text"] if file_format == "txt" else list(text_keys or ["text"])
    files = match_text_files(input_path)
    rows = read_rows(files, file_format, keys)
    texts = [text for key in keys for text in rows[key]]
    if not texts:
        raise ValueError(f"No text in {input_path!r}.")
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1000).prefetch(2)
    vocab = bert_vocab_from_dataset(
        dataset,
        vocab_size=vocab_size,
        reserved_tokens=list(SPECIAL_TOKENS),
        bert_tokenizer_params={"lower_case": lower_case},
        learn_params={},
    )
    check_vocabulary(vocab, where=output)
    write_vocabulary(vocab, output)
    return {"output": output, "vocab_size": len(vocab), "num_texts": len(texts)}


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    exit_code = parse_flags(FLAGS, argv, __doc__, required=("input_path", "output"))
    if exit_code is not None:
        return exit_code
    return run_and_report(
        lambda: build_vocab(
            FLAGS.input_path,
            FLAGS.output,
            FLAGS.vocab_size,
            FLAGS.file_format,
            FLAGS.text_keys,
            FLAGS.lower_case,
        ),
        lambda s: (
            f"Wrote {s['vocab_size']} tokens from {s['num_texts']} texts to {s['output']}."
        ),
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
