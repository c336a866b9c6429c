"""Reading TSV, CSV, JSON-lines and plain-text files into columns of strings.

Rows are read in Python (the standard `csv` and `json` modules; files
through `tf.io.gfile`, so any TensorFlow file system works) and become a
`tf.data.Dataset` of `{column: string}` dicts; tokenization then runs in
the graph like for every other source. Every row is checked when read: a
missing column or a malformed line is an error naming the file and line.

Example:
```python
import os, tempfile
from official.nlp.dataloaders.text_files import read_rows

path = os.path.join(tempfile.mkdtemp(), "train.tsv")
with open(path, "w") as f:
    f.write("sentence\\tlabel\\nA fine film .\\t1\\nDull .\\t0\\n")
rows = read_rows([path], "tsv", ["sentence", "label"])
assert rows == {"sentence": ["A fine film .", "Dull ."], "label": ["1", "0"]}
```
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

import tensorflow as tf

TEXT_FILE_FORMATS = ("tsv", "csv", "jsonl", "txt")


def _open(path: str):
    return io.StringIO(tf.io.gfile.GFile(path, "rb").read().decode("utf-8"))


def _rows_of_table(path: str, delimiter: str, columns: Sequence[str]):
    with _open(path) as f:
        reader = csv.DictReader(
            f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else 0
        )
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(
                f"{path}: no column {', '.join(repr(c) for c in missing)} in the "
                f"header row {header}. Set the data config's text_a_key / "
                f"text_b_key / label_key to the file's column names."
            )
        for row in reader:
            if any(row.get(c) is None for c in columns):
                raise ValueError(
                    f"{path}, line {reader.line_num}: the row has fewer fields than "
                    f"the header ({len(header)}): {row}."
                )
            yield [row[c] for c in columns]


def _rows_of_jsonl(path: str, columns: Sequence[str]):
    with _open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {number}: not JSON ({e}).") from None
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}, line {number}: a JSON object is needed, got "
                    f"{type(record).__name__}."
                )
            missing = [c for c in columns if c not in record]
            if missing:
                raise ValueError(
                    f"{path}, line {number}: no key {', '.join(map(repr, missing))} "
                    f"(keys: {sorted(record)})."
                )
            yield [str(record[c]) for c in columns]


def _rows_of_txt(path: str, columns: Sequence[str]):
    if len(columns) != 1:
        raise ValueError(
            f"{path}: a plain-text file has one column (one text per line); "
            f"asked for {list(columns)}."
        )
    with _open(path) as f:
        for line in f:
            text = line.rstrip("\n").rstrip("\r")
            if text.strip():
                yield [text]


def read_rows(
    paths: Sequence[str], file_format: str, columns: Sequence[str]
) -> dict[str, list[str]]:
    """The `columns` of every row of `paths`, in file order.

    Args:
        paths: files to read, in order.
        file_format: one of tsv, csv (both with a header row), jsonl, txt.
        columns: the column names (header names, JSON keys; for txt the one
            name given to each line).

    Returns:
        `{column: [str, ...]}`, one entry per row.

    Raises:
        ValueError: an unknown format, a missing column, a malformed row.
    """
    if file_format not in TEXT_FILE_FORMATS:
        raise ValueError(
            f"file_format must be one of {', '.join(TEXT_FILE_FORMATS)}. "
            f"Received: {file_format!r}."
        )
    out = {c: [] for c in columns}
    for path in paths:
        if file_format == "jsonl":
            rows = _rows_of_jsonl(path, columns)
        elif file_format == "txt":
            rows = _rows_of_txt(path, columns)
        else:
            rows = _rows_of_table(path, "\t" if file_format == "tsv" else ",", columns)
        for row in rows:
            for column, value in zip(columns, row):
                out[column].append(value)
    return out
