"""A generated English-like text corpus and labelled sentences (sentiment).

The demo of Garden's text family: masked-LM pretraining on an unlabelled
corpus, then fine-tuning on few labelled sentences, beats fine-tuning from
scratch because the labelled training and validation sentences use
*different* adjectives. Only the corpus says which adjectives go with "loved"
and which with "hated"; a model that never read it cannot tell the polarity
of the validation adjectives.

- `corpus.txt`: one sentence per line, e.g. "the film was vivid , i adored
  it ." or "i hated the song , it was dull and bland ." (every adjective,
  both halves of each list).
- `train.tsv` / `validation.tsv` (`sentence<TAB>label`, label `negative` or
  `positive`): "the film was vivid ." with adjectives from the first half of
  each list for training and the second half for validation.
- `vocab.txt`: `[PAD] [UNK] [CLS] [SEP] [MASK]`, then every word and
  punctuation mark of the language (whole-word WordPieces).
- `labels.txt`: `negative`, `positive`.

Everything is a function of `seed`: the same call writes the same files.

Run with: python -m official.datasets.text_corpus --output_dir=data/text_corpus

Example:
```python
import os, tempfile
from official.datasets import text_corpus

out = tempfile.mkdtemp()
summary = text_corpus.write(out, corpus_sentences=100, train_sentences=20,
                            validation_sentences=10)
assert summary["train"] == 20 and os.path.exists(os.path.join(out, "vocab.txt"))
assert open(os.path.join(out, "train.tsv")).readline() == "sentence\\tlabel\\n"
```
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

POSITIVE = (
    "good", "great", "vivid", "superb", "lovely", "charming", "brilliant", "witty",
    "moving", "fresh", "gripping", "elegant", "joyful", "clever", "tender", "radiant",
    "warm", "bold", "graceful", "stunning", "delightful", "smart", "rich", "sharp",
    "fine", "sweet", "vibrant", "inspired", "splendid", "heartfelt",
)  # fmt: skip
NEGATIVE = (
    "bad", "dull", "bland", "awful", "clumsy", "tedious", "boring", "shallow",
    "messy", "stale", "painful", "sloppy", "grim", "silly", "hollow", "weak",
    "flat", "lame", "tired", "poor", "muddled", "cheap", "lifeless", "empty",
    "dreary", "forced", "sour", "limp", "awkward", "pointless",
)  # fmt: skip
NOUNS = ("film", "movie", "show", "story", "play", "book", "song", "album", "series")
LIKE = ("loved", "adored", "enjoyed", "liked")
DISLIKE = ("hated", "disliked", "loathed", "despised")
MODIFIERS = ("", "very ", "quite ", "really ", "so ")
LABELS = ("negative", "positive")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
OTHER_WORDS = ("the", "was", "i", "it", "and", "a", "this", "one", "is")
PUNCTUATION = (",", ".")


def _split(words: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    half = len(words) // 2
    return words[:half], words[half:]


def corpus_sentence(rng: np.random.Generator) -> str:
    """One unlabelled sentence: adjectives of one polarity with its cue verb."""
    positive = bool(rng.integers(2))
    adjectives = POSITIVE if positive else NEGATIVE
    verb = str(rng.choice(LIKE if positive else DISLIKE))
    noun = str(rng.choice(NOUNS))
    a, b = (str(w) for w in rng.choice(adjectives, size=2, replace=False))
    modifier = str(rng.choice(MODIFIERS))
    form = int(rng.integers(4))
    if form == 0:
        return f"the {noun} was {modifier}{a} , i {verb} it ."
    if form == 1:
        return f"i {verb} the {noun} , it was {a} and {b} ."
    if form == 2:
        return f"this {noun} is {modifier}{a} and {b} ."
    return f"a {a} {noun} , i {verb} this one ."


def labelled_sentence(rng: np.random.Generator, split: str) -> tuple[str, str]:
    """`(sentence, label)`; training and validation use disjoint adjectives."""
    positive = int(rng.integers(2))
    adjectives = _split(POSITIVE if positive else NEGATIVE)[split != "train"]
    noun = str(rng.choice(NOUNS))
    modifier = str(rng.choice(MODIFIERS))
    a, b = (str(w) for w in rng.choice(adjectives, size=2, replace=False))
    form = int(rng.integers(3))
    if form == 0:
        sentence = f"the {noun} was {modifier}{a} ."
    elif form == 1:
        sentence = f"this {noun} is {a} and {b} ."
    else:
        sentence = f"a {modifier}{a} {noun} ."
    return sentence, LABELS[positive]


def vocabulary() -> list[str]:
    """Special tokens, then every word and punctuation mark, sorted."""
    words = {*POSITIVE, *NEGATIVE, *NOUNS, *LIKE, *DISLIKE, *OTHER_WORDS}
    words.update(m.strip() for m in MODIFIERS if m.strip())
    return [*SPECIAL_TOKENS, *sorted(words), *PUNCTUATION]


def write(
    output_dir: str,
    corpus_sentences: int = 20000,
    train_sentences: int = 400,
    validation_sentences: int = 400,
    seed: int = 0,
) -> dict:
    """Writes corpus.txt, train.tsv, validation.tsv, vocab.txt, labels.txt.

    Returns:
        `{"output_dir", "corpus", "train", "validation", "vocab_size"}` (also
        written to `summary.json`).
    """
    for name, count in (
        ("corpus_sentences", corpus_sentences),
        ("train_sentences", train_sentences),
        ("validation_sentences", validation_sentences),
    ):
        if count < 1:
            raise ValueError(f"{name} must be >= 1. Received: {count}.")
    os.makedirs(output_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(os.path.join(output_dir, "corpus.txt"), "w", encoding="utf-8") as f:
        for _ in range(corpus_sentences):
            f.write(corpus_sentence(rng) + "\n")
    for split, count in (
        ("train", train_sentences),
        ("validation", validation_sentences),
    ):
        with open(os.path.join(output_dir, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.write("sentence\tlabel\n")
            for _ in range(count):
                sentence, label = labelled_sentence(rng, split)
                f.write(f"{sentence}\t{label}\n")
    vocab = vocabulary()
    with open(os.path.join(output_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in vocab))
    with open(os.path.join(output_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{label}\n" for label in LABELS))
    summary = {
        "output_dir": output_dir,
        "corpus": corpus_sentences,
        "train": train_sentences,
        "validation": validation_sentences,
        "vocab_size": len(vocab),
        "seed": seed,
    }
    with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def main(argv: list[str]) -> int:
    """`--output_dir=DIR [--seed=N]`: writes the corpus and prints a summary."""
    options = dict(
        arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg
    )
    unknown = sorted(set(options) - {"output_dir", "seed"})
    if unknown or "output_dir" not in options:
        print(
            "usage: python -m official.datasets.text_corpus --output_dir=DIR [--seed=N]"
            + (f" (unknown flags: {', '.join(unknown)})" if unknown else ""),
            file=sys.stderr,
        )
        return 2
    summary = write(options["output_dir"], seed=int(options.get("seed", 0)))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
