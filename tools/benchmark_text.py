"""Sentences/s of Garden's in-graph tokenization against tensorflow-text used directly.

    python tools/benchmark_text.py --vocab_file=data/text_corpus/vocab.txt \\
      --input_path=data/text_corpus/corpus.txt --batch_size=256 --repeats=3

Both pipelines read the same sentences (one per line, from memory), batch
them and produce packed `[batch, seq_length]` int32 ids, mask and segment
ids, measured in alternation (`--repeats` rounds of `--num_batches` batches
after `--warmup_batches`); the median round is reported:

- `garden`: `BertPreprocessor` (the layer the training input and the
  SavedModel run) mapped over batches;
- `plain`: tensorflow-text's `FastBertTokenizer`, `RoundRobinTrimmer`,
  `combine_segments` and `pad_model_inputs` written out in the map function.

Without `--input_path`, sentences of the generated corpus
(`official.datasets.text_corpus`) are used; without `--vocab_file`, its
vocabulary. Compare figures only within one run, and name the CPU.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("vocab_file", "", "WordPiece vocab.txt.", flag_values=FLAGS)
flags.DEFINE_string(
    "input_path", "", "Text file, one sentence a line.", flag_values=FLAGS
)
flags.DEFINE_integer("seq_length", 128, "Packed length.", flag_values=FLAGS)
flags.DEFINE_integer("batch_size", 256, "Sentences per batch.", flag_values=FLAGS)
flags.DEFINE_integer("num_batches", 40, "Timed batches per round.", flag_values=FLAGS)
flags.DEFINE_integer(
    "warmup_batches", 5, "Untimed batches per round.", flag_values=FLAGS
)
flags.DEFINE_integer("repeats", 3, "Rounds per pipeline.", flag_values=FLAGS)


def _plain_pack(vocabulary, seq_length):
    import tensorflow as tf
    import tensorflow_text as text

    tokenizer = text.FastBertTokenizer(
        vocabulary, token_out_type=tf.int64, lower_case_nfd_strip_accents=True
    )
    cls_id, sep_id = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
    trimmer = text.RoundRobinTrimmer(max_seq_length=seq_length - 2)

    def pack(sentences):
        ids = tokenizer.tokenize(sentences)
        ids = trimmer.trim([ids])
        ids, types = text.combine_segments(ids, cls_id, sep_id)
        word_ids, mask = text.pad_model_inputs(ids, seq_length)
        types, _ = text.pad_model_inputs(types, seq_length)
        return {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(types, tf.int32),
        }

    return pack


def _round(dataset, num_batches: int, warmup: int) -> float:
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return time.perf_counter() - start


def run(
    vocab_file: str = "",
    input_path: str = "",
    seq_length: int = 128,
    batch_size: int = 256,
    num_batches: int = 40,
    warmup_batches: int = 5,
    repeats: int = 3,
) -> dict:
    """Times both pipelines; returns sentences/s (median round) of each."""
    import tensorflow as tf

    from official.datasets import text_corpus
    from official.nlp.tokenization.bert_preprocessor import BertPreprocessor
    from official.nlp.tokenization.vocabulary import load_vocabulary

    if not input_path or not vocab_file:
        directory = tempfile.mkdtemp()
        text_corpus.write(directory, corpus_sentences=20000)
        input_path = input_path or os.path.join(directory, "corpus.txt")
        vocab_file = vocab_file or os.path.join(directory, "vocab.txt")
    with open(input_path, encoding="utf-8") as f:
        sentences = [line.strip() for line in f if line.strip()]
    if not sentences:
        raise ValueError(f"No sentence in {input_path!r}.")
    vocabulary = load_vocabulary(vocab_file)
    preprocessor = BertPreprocessor(vocabulary, seq_length=seq_length)
    pipelines = {"garden": preprocessor, "plain": _plain_pack(vocabulary, seq_length)}

    def dataset(fn):
        data = tf.data.Dataset.from_tensor_slices(sentences).repeat().batch(batch_size)
        return data.map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

    seconds = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, fn in pipelines.items():
            seconds[name].append(_round(dataset(fn), num_batches, warmup_batches))
    count = num_batches * batch_size
    return {
        name: round(count / statistics.median(times), 1)
        for name, times in seconds.items()
    } | {"batch_size": batch_size, "seq_length": seq_length, "cpu": _cpu_name()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags, run_and_report

    code = parse_flags(FLAGS, argv, __doc__)
    if code is not None:
        return code
    return run_and_report(
        lambda: run(
            FLAGS.vocab_file,
            FLAGS.input_path,
            FLAGS.seq_length,
            FLAGS.batch_size,
            FLAGS.num_batches,
            FLAGS.warmup_batches,
            FLAGS.repeats,
        ),
        json.dumps,
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
