"""JSON parsing with a fast path for large numeric arrays (images as lists).

`json.loads` followed by `np.asarray` costs about 1.5 ms for one 32x32x3
image written as nested lists, all of it holding the GIL, which caps a
Python server far below the model's own speed. `loads` finds each long
bracketed run of numbers outside string literals, parses the rest of the
body with `json.loads`, and leaves each run as a `NumericText`. Once the
dtype is known, `NumericText.to_array` reads it with numpy: it checks that
the brackets and commas form an exactly rectangular array, parses the numbers
with `np.fromstring`, and checks their count. Whenever anything is not
exactly as expected (a ragged list, a float for an integer input, `true`, a
stray character) it returns None, and the caller falls back to
`json.loads(text)`, which gives the usual result or error message. The fast
path never accepts what the plain path would refuse, apart from JSON's
spelling of numbers (leading zeros).

Imports only numpy and the standard library.
"""

from __future__ import annotations

import json
import re
import secrets

import numpy as np

MIN_FAST_CHARS = 512  # shorter runs are left to json.loads
MAX_DEPTH = 16  # deeper arrays are left to json.loads
_QUOTE_OR_BRACE = re.compile(r'["{}]')
# A string literal (kept as is) or a bracketed run of number characters.
_RUNS = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|\[[0-9\s,.eE+\-\[\]]*+')
_PLACEHOLDER = f"\x00numeric-{secrets.token_hex(8)}:"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)[1:-1]  # the NUL written as \u0000
_NO_SPACES = str.maketrans("", "", " ")
_NOT_SKELETON = str.maketrans("", "", "0123456789+-.eE")
_NOT_NUMBERS = str.maketrans("", "", "[]")


class NumericText:
    """A JSON array of numbers, kept as text until its dtype is known."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def to_array(self, dtype: np.dtype) -> np.ndarray | None:
        """The array, or None when the fast path cannot be sure (use json)."""
        dtype = np.dtype(dtype)
        if dtype.kind not in "iuf":
            return None
        text = self.text
        spaces = text.count(" ")
        if spaces:
            if spaces != text.count(", "):
                return None  # a space elsewhere could hide "1 2": json decides.
            text = text.translate(_NO_SPACES)  # Python's json.dumps writes ", ".
        if any(c in text for c in "\t\n\r"):
            return None
        shape = _shape(text)
        if shape is None or text.translate(_NOT_SKELETON) != _skeleton(shape):
            return None
        flat = text.translate(_NOT_NUMBERS)
        if not flat or any(c in flat for c in ".eE+"):
            return None  # floats: json reads them (or refuses them for ints).
        if flat.count("-") != flat.count(",-") + flat.startswith("-"):
            return None  # a sign inside a number
        try:
            values = np.fromstring(flat, dtype=np.int64, sep=",")
        except ValueError:  # numpy >= 2.? raises on text it cannot read to the end
            return None
        if values.size != int(np.prod(shape)):
            return None
        if dtype.kind == "f" and np.abs(values).max() > 2**53:
            return None
        return values.reshape(shape)

    def plain(self):
        """The value as `json.loads` gives it."""
        return json.loads(self.text)


def _shape(text: str) -> tuple[int, ...] | None:
    """Sizes along the first element of each level (checked by the skeleton)."""
    depth = len(text) - len(text.lstrip("["))
    if not 0 < depth <= MAX_DEPTH or not text.endswith("]" * depth):
        return None
    shape = [text.count("]" * (depth - 1) + ",") + 1]  # the whole text is level 0
    for level in range(1, depth):
        end = text.find("]" * (depth - level), level)
        if end < 0:
            return None
        shape.append(text.count("]" * (depth - level - 1) + ",", level, end + 1) + 1)
    return tuple(shape)


def _skeleton(shape: tuple[int, ...]) -> str:
    """Brackets and commas of a rectangular array: (2, 2) -> "[[,],[,]]"."""
    inner = "[" + "," * (shape[-1] - 1) + "]"
    for size in reversed(shape[:-1]):
        inner = "[" + ",".join([inner] * size) + "]"
    return inner


def loads(body: bytes | str):
    """`json.loads`, with long numeric arrays left as `NumericText`."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if len(body) < MIN_FAST_CHARS:
        return json.loads(body)
    runs = _find_runs(body)
    if not runs:
        return json.loads(body)
    pieces, done = [], 0
    for index, (start, stop) in enumerate(runs):
        pieces += [body[done:start], f'"{_PLACEHOLDER_JSON}{index}"']
        done = stop
    skeleton = "".join(pieces) + body[done:]
    try:
        tree = json.loads(skeleton)
    except json.JSONDecodeError:
        return json.loads(body)  # its error message has the right positions.
    return _restore(tree, [body[start:stop] for start, stop in runs])


def _find_runs(body: str) -> list[tuple[int, int]]:
    """(start, stop) of each long array of numbers that is a whole JSON value.

    A candidate starts with `[` right after a `:` (a member's value) or at
    the start of the body, outside any string literal, and ends at the first
    run of as many `]` as it opens with, before the next quote or brace; its
    brackets must balance. In a valid body such a run is one whole value;
    `NumericText.to_array` checks the rest. Each candidate's search ends at
    the next quote or brace and the scan resumes there, so the whole pass is
    linear in the body's length.
    """
    runs: list[tuple[int, int]] = []
    position, quotes = 0, 0  # quotes before `position`
    while True:
        start = body.find("[", position)
        if start < 0:
            return runs
        if body.find("\\", position, start) >= 0:
            return _find_runs_slowly(body, runs, position)  # escapes: count strictly
        quotes += body.count('"', position, start)
        position = start + 1
        if quotes % 2 or not _starts_a_value(body, start):
            continue
        boundary = _QUOTE_OR_BRACE.search(body, start)
        limit = boundary.start() if boundary else len(body)
        position = limit  # no key, so no other candidate, before `limit`
        depth = 1
        while depth <= MAX_DEPTH and body.startswith("[", start + depth):
            depth += 1
        close = body.find("]" * depth, start, limit)
        if depth > MAX_DEPTH or close < 0:
            continue
        stop = close + depth
        if stop - start >= MIN_FAST_CHARS and body.count(
            "[", start, stop
        ) == body.count("]", start, stop):
            runs.append((start, stop))


def _find_runs_slowly(body: str, runs: list, position: int) -> list[tuple[int, int]]:
    """Like `_find_runs` from `position`, skipping string literals with a regex."""
    for match in _RUNS.finditer(body, position):
        text = match.group()
        if text[0] == '"' or len(text) < MIN_FAST_CHARS:
            continue
        if not _starts_a_value(body, match.start()):
            continue
        close = text.rfind("]")
        if text.count("[", 0, close + 1) == text.count("]", 0, close + 1):
            runs.append((match.start(), match.start() + close + 1))
    return runs


def _starts_a_value(body: str, start: int) -> bool:
    """Whether the run at `start` is a whole JSON value (after ':' or at the start)."""
    index = start - 1
    while index >= 0 and body[index] in " \t\n\r":
        index -= 1
    return index < 0 or body[index] == ":"


def _restore(value, runs: list[str]):
    if isinstance(value, str):
        if value.startswith(_PLACEHOLDER):
            return NumericText(runs[int(value[len(_PLACEHOLDER) :])])
        return value
    if isinstance(value, list):
        return [_restore(item, runs) for item in value]
    if isinstance(value, dict):
        return {key: _restore(item, runs) for key, item in value.items()}
    return value
