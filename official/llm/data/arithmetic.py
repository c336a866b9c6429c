"""Generated data for the tiny causal-LM demo: sums with checkable answers.

Three JSON Lines files and a byte-level tokenizer, all from a seed:
- `corpus.jsonl`: pretraining text (`{"text": ...}`), sentences that state
  sums in words and symbols ("7 plus 5 is 12.", "7+5=12") over every pair of
  numbers below `max_operand`, shuffled;
- `sft_train.jsonl` / `sft_validation.jsonl`: chat examples (`messages`:
  user "What is 7+5?", assistant "12"), the validation pairs never in SFT
  training (they are in the corpus: SFT teaches the question format, the
  corpus taught the sums);
- `tokenizer/` (from the command line): the byte-level GPT-2 tokenizer of
  `official.llm.data.byte_tokenizer`.

Run:
    python -m official.llm.data.arithmetic --output_dir=data/arith

Example:
```python
import tempfile
from official.llm.data import arithmetic

paths = arithmetic.write_arithmetic_data(tempfile.mkdtemp(), max_operand=5)
sorted(paths)  # -> ['corpus', 'sft_train', 'sft_validation']
```
"""

from __future__ import annotations

import json
import os
import random

from official.llm.data import byte_tokenizer

# Questions asked in several wordings, so the model reads the numbers.
QUESTIONS = ("What is {a}+{b}?", "Compute {a} + {b}.", "{a} plus {b} equals?")
STATEMENTS = ("{a}+{b}={c}", "{a} plus {b} is {c}.", "The sum of {a} and {b} is {c}.")


def _pairs(max_operand: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(max_operand) for b in range(max_operand)]


def corpus_lines(max_operand: int, seed: int, repeats: int = 2) -> list[str]:
    """Pretraining sentences: each sum stated in every form, `repeats` times."""
    rng = random.Random(seed)
    lines = [
        template.format(a=a, b=b, c=a + b)
        for _ in range(repeats)
        for a, b in _pairs(max_operand)
        for template in STATEMENTS
    ]
    rng.shuffle(lines)
    return lines


def sft_examples(
    max_operand: int, seed: int, validation_fraction: float = 0.2
) -> tuple[list[dict], list[dict]]:
    """(train, validation) chat examples; the pairs of the two never overlap."""
    rng = random.Random(seed + 1)
    pairs = _pairs(max_operand)
    rng.shuffle(pairs)
    held_out = max(1, int(len(pairs) * validation_fraction))

    def chats(chosen, every_wording):
        out = []
        for a, b in chosen:
            wordings = QUESTIONS if every_wording else (QUESTIONS[0],)
            for question in wordings:
                out.append(
                    {
                        "messages": [
                            {"role": "user", "content": question.format(a=a, b=b)},
                            {"role": "assistant", "content": str(a + b)},
                        ]
                    }
                )
        rng.shuffle(out)
        return out

    return chats(pairs[held_out:], True), chats(pairs[:held_out], False)


def _write_jsonl(path: str, records) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path


def write_arithmetic_data(
    output_dir: str, max_operand: int = 20, seed: int = 0
) -> dict[str, str]:
    """Writes the corpus and the SFT splits; returns `{name: path}`."""
    os.makedirs(output_dir, exist_ok=True)
    train, validation = sft_examples(max_operand, seed)
    return {
        "corpus": _write_jsonl(
            os.path.join(output_dir, "corpus.jsonl"),
            ({"text": line} for line in corpus_lines(max_operand, seed)),
        ),
        "sft_train": _write_jsonl(os.path.join(output_dir, "sft_train.jsonl"), train),
        "sft_validation": _write_jsonl(
            os.path.join(output_dir, "sft_validation.jsonl"), validation
        ),
    }


def main(argv: list[str]) -> None:
    del argv
    from absl import flags

    output_dir = flags.FLAGS.output_dir
    paths = write_arithmetic_data(output_dir, flags.FLAGS.max_operand, flags.FLAGS.seed)
    paths["tokenizer"] = byte_tokenizer.write_byte_tokenizer(
        os.path.join(output_dir, "tokenizer")
    )
    for name, path in sorted(paths.items()):
        print(f"{name}: {path}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("output_dir", None, "Where to write the files.", required=True)
    flags.DEFINE_integer("max_operand", 20, "Sums of pairs of numbers below this.")
    flags.DEFINE_integer("seed", 0, "Seed of the shuffles and the split.")
    app.run(main)
