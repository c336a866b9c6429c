"""Where text examples come from: text files, TFRecords or TFDS, and their columns."""

from __future__ import annotations

import dataclasses

from official.base.config import Config
from official.core.experiment_config import DataConfig

# `file_format` of `input_path`: TFRecords of tf.Examples (the converter's
# output), files with a header row (tsv, csv), JSON lines, or plain text with
# one example per line (its column is named by `text_a_key`).
FILE_FORMATS = ("tfrecord", "tsv", "csv", "jsonl", "txt")


@dataclasses.dataclass
class TextDataConfig(DataConfig):
    """One split of text examples and the names of their columns.

    `input_path` holds comma-separated glob patterns of files in
    `file_format` (tfrecord, tsv, csv, jsonl, txt), or set `tfds_name`
    (e.g. `glue/sst2`, `glue/mrpc`, `imdb_reviews`, prepared in
    `tfds_data_dir`). Column names (`text_a_key`, `text_b_key`, `label_key`)
    apply to every format: TSV/CSV header names, JSON keys, tf.Example
    feature names (`tools/convert_text_classification.py` keeps the source's
    names) or TFDS feature names. `text_b_key` empty means single sentences.
    Labels are integers (class ids), floats (regression) or, with the task's
    `label_names`, strings naming a class.
    """

    file_format: str = "tfrecord"
    text_a_key: str = "sentence"
    text_b_key: str = ""
    label_key: str = "label"

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.file_format not in FILE_FORMATS:
            raise ValueError(
                f"{where}.file_format must be one of {', '.join(FILE_FORMATS)}. "
                f"Received: {self.file_format!r}."
            )
        if self.input_format != "tfrecord":
            raise ValueError(
                f"{where}.input_format must stay 'tfrecord' for text; choose the "
                f"files' format with {where}.file_format ({', '.join(FILE_FORMATS)}). "
                f"Received: input_format={self.input_format!r}."
            )
        if not self.text_a_key:
            raise ValueError(f"{where}.text_a_key must name the text column.")
        if self.file_format == "txt" and self.text_b_key:
            raise ValueError(
                f"{where}.text_b_key must be empty with file_format=txt (one text "
                f"per line). Received: text_b_key={self.text_b_key!r}."
            )


@dataclasses.dataclass
class TextPreprocessingConfig(Config):
    """WordPiece tokenization and packing, shared by the input and the export.

    `vocab_file` is one token per line (BERT's vocab.txt, or one written by
    `tools/build_wordpiece_vocab.py`); `lower_case` lower-cases and strips
    accents (uncased models); `seq_length` is the packed length.
    """

    vocab_file: str = ""
    lower_case: bool = True
    seq_length: int = 128

    def validate(self, where: str = "") -> None:
        super().validate(where)
        if self.seq_length < 3:
            raise ValueError(
                f"{where}.seq_length must be >= 3 ([CLS], a token, [SEP]). "
                f"Received: {self.seq_length}."
            )

    def check_vocab(self, where: str) -> None:
        """Raises a ConfigError when no vocabulary is set (checked at run time)."""
        if not self.vocab_file:
            from official.base.config import ConfigError

            raise ConfigError(
                f"{where}.vocab_file is empty: set it to a WordPiece vocab.txt "
                f"(tools/build_wordpiece_vocab.py builds one from a corpus)."
            )


@dataclasses.dataclass
class EncoderConfig(Config):
    """A text encoder and its constructor arguments (checked against its
    signature when the config is validated). `type` is `bert`."""

    type: str = "bert"
    params: dict = dataclasses.field(default_factory=lambda: {"size": "base"})

    def validate(self, where: str = "") -> None:
        super().validate(where)
        from official.base.params_check import check_params
        from official.base.suggest import did_you_mean
        from official.nlp.encoders import ENCODERS

        if self.type not in ENCODERS:
            raise KeyError(
                f"{where}.type: unknown encoder {self.type!r}."
                f"{did_you_mean(self.type, ENCODERS)} Known: {', '.join(ENCODERS)}."
            )
        cls = ENCODERS[self.type]
        check_params(cls, self.params, f"{where}.params", reserved=("vocab_size",))
        cls.validate_params(self.params, f"{where}.params")
