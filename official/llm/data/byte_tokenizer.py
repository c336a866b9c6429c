"""A byte-level BPE tokenizer preset written from scratch (nothing downloaded).

GPT-2's tokenizer maps the 256 bytes to printable characters and merges
frequent pairs. With no merges it is a byte tokenizer: any text round-trips,
one token per byte, plus `<|endoftext|>` (id 0, GPT-2's start, end and
padding token). Tests, the demo and new models trained here use it; merges
(pairs of vocabulary entries, GPT-2's `merges.txt` lines) make tokens longer.

Example:
```python
import tempfile
from official.llm.data import byte_tokenizer
from official.llm.models.causal_lm_builder import read_tokenizer_dir

path = byte_tokenizer.write_byte_tokenizer(tempfile.mkdtemp())
tokenizer = read_tokenizer_dir(path)
tokenizer.detokenize(tokenizer("2+2=4"))  # -> '2+2=4'
```
"""

from __future__ import annotations

import os

END_TOKEN = "<|endoftext|>"
# keras-hub's BPE tokenizer needs at least one merge (an empty merge table
# gets the wrong key type); this one joins two spaces and changes nothing else.
DEFAULT_MERGES = ("\u0120 \u0120",)


def byte_vocabulary(merges=DEFAULT_MERGES) -> dict[str, int]:
    """`<|endoftext|>` = 0, the 256 byte characters, then one entry per merge."""
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    _, characters = bytes_to_unicode()
    vocabulary = {END_TOKEN: 0}
    for character in sorted(set(characters)):
        vocabulary[character] = len(vocabulary)
    for merge in merges:
        left, right = merge.split(" ")
        for part in (left, right):
            if part not in vocabulary:
                raise ValueError(
                    f"merge {merge!r}: {part!r} is not in the vocabulary; a merge "
                    f"joins two existing entries (bytes or earlier merges)."
                )
        vocabulary.setdefault(left + right, len(vocabulary))
    return vocabulary


def write_byte_tokenizer(directory: str, merges=DEFAULT_MERGES) -> str:
    """Writes a `GPT2Tokenizer` preset (tokenizer only) into `directory`."""
    import keras_hub

    if not merges:
        raise ValueError("write_byte_tokenizer needs at least one merge.")
    tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary=byte_vocabulary(merges), merges=list(merges)
    )
    os.makedirs(directory, exist_ok=True)
    tokenizer.save_to_preset(directory)
    return directory
