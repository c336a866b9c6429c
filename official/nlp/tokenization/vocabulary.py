"""WordPiece vocabularies: reading, writing and the special tokens BERT needs."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
# The special tokens every Garden vocabulary starts with, in this order (as
# the published BERT vocabularies do after their `[unused*]` entries).
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)


def load_vocabulary(path: str) -> list[str]:
    """One token per line (the line number is the id), e.g. BERT's vocab.txt.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is empty or a special token is missing.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"Vocabulary file {path!r} does not exist. Build one with "
            f"tools/build_wordpiece_vocab.py or point to a BERT vocab.txt."
        )
    with tf.io.gfile.GFile(path) as f:
        tokens = [line.rstrip("\n").rstrip("\r") for line in f]
    while tokens and not tokens[-1]:
        tokens.pop()
    check_vocabulary(tokens, where=path)
    return tokens


def write_vocabulary(tokens: Sequence[str], path: str) -> None:
    """Writes one token per line."""
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(f"{token}\n" for token in tokens))


def check_vocabulary(tokens: Sequence[str], where: str = "vocabulary") -> None:
    """Raises ValueError unless `tokens` is non-empty, has no duplicates and
    holds every special token (`[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`).

    Example:
    ```python
    from official.nlp.tokenization.vocabulary import SPECIAL_TOKENS, check_vocabulary

    check_vocabulary([*SPECIAL_TOKENS, "hello"])
    try:
        check_vocabulary(["[PAD]", "hello"])
    except ValueError as e:
        assert "[UNK]" in str(e)
    ```
    """
    if not tokens:
        raise ValueError(f"{where}: the vocabulary is empty.")
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise ValueError(
            f"{where}: the vocabulary lacks the special token(s) {', '.join(missing)}; "
            f"a BERT vocabulary holds all of {', '.join(SPECIAL_TOKENS)}."
        )
    seen = set()
    for index, token in enumerate(tokens):
        if token in seen:
            raise ValueError(
                f"{where}: token {token!r} appears twice (again at line {index + 1})."
            )
        seen.add(token)


def special_ids(tokens: Sequence[str]) -> dict[str, int]:
    """`{"pad", "unk", "cls", "sep", "mask"}` -> id in `tokens`."""
    index = {token: i for i, token in enumerate(tokens)}
    return {t.strip("[]").lower(): index[t] for t in SPECIAL_TOKENS}
