"""tools/build_wordpiece_vocab.py and tools/convert_text_classification.py."""

import json
import os

import tensorflow as tf

from official.nlp.tokenization.bert_tokenizer import BertTokenizer
from official.nlp.tokenization.vocabulary import SPECIAL_TOKENS, load_vocabulary
from tools import build_wordpiece_vocab, convert_text_classification


def test_vocab_from_a_corpus_tokenizes_it(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Running runners ran.\nThe runner runs!\n" * 20)
    out = str(tmp_path / "vocab.txt")
    argv = ["build", f"--input_path={corpus}", f"--output={out}", "--vocab_size=60"]
    assert build_wordpiece_vocab.main(argv) == 0
    vocab = load_vocabulary(out)
    assert vocab[:5] == list(SPECIAL_TOKENS)
    ids = BertTokenizer(vocab)(tf.constant(["the runner ran ."]))[0].numpy()
    assert vocab.index("[UNK]") not in ids.tolist()
    assert build_wordpiece_vocab.main(["build", f"--output={out}"]) == 2
    missing = ["build", f"--input_path={tmp_path}/none*.txt", f"--output={out}"]
    assert build_wordpiece_vocab.main(missing) == 1


def test_converter_writes_pairs_and_scores(tmp_path, capsys):
    source = tmp_path / "pairs.jsonl"
    rows = [
        {"a": "a cat sat", "b": "a cat rested", "score": 4.5},
        {"a": "rain", "b": "", "score": 1.0},
        {"a": "dogs bark", "b": "cats meow", "score": 0.5},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "tfr"
    argv = [
        "convert",
        f"--input_path={source}",
        "--file_format=jsonl",
        "--text_a_key=a",
        "--text_b_key=b",
        "--label_key=score",
        "--regression",
        f"--output_dir={out}",
        "--prefix=validation",
        "--num_shards=1",
        "--noprogress",
    ]
    assert convert_text_classification.main(argv) == 0
    assert "Wrote 2 examples" in capsys.readouterr().out
    summary = json.loads((out / "summary-validation.json").read_text())
    assert summary["num_skipped_empty"] == 1 and summary["label_type"] == "float"
    records = list(
        tf.data.TFRecordDataset(str(out / summary["files"][0].split("/")[-1]))
    )
    example = tf.train.Example.FromString(records[0].numpy())
    assert set(example.features.feature) == {"a", "b", "score"}
    assert not os.path.exists(out / "labels.txt")
    bad = argv[:6] + ["--label_names=x,y"] + argv[6:]
    assert convert_text_classification.main(bad) == 1


def test_benchmark_text_reports_both_pipelines(tmp_path):
    from official.datasets import text_corpus
    from tools import benchmark_text

    text_corpus.write(
        str(tmp_path), corpus_sentences=64, train_sentences=1, validation_sentences=1
    )
    result = benchmark_text.run(
        str(tmp_path / "vocab.txt"),
        str(tmp_path / "corpus.txt"),
        seq_length=16,
        batch_size=8,
        num_batches=2,
        warmup_batches=1,
        repeats=1,
    )
    assert result["garden"] > 0 and result["plain"] > 0
