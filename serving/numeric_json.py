"""JSON parsing with a fast path for large numeric arrays (images as lists).

`json.loads` followed by `np.asarray` costs about 1.5 ms for one 32x32x3
image written as nested lists, all of it holding the GIL, which caps a
Python server far below the model's own speed. `loads` finds each long
bracketed run of numbers outside string literals, parses the rest of the
body with `json.loads`, and leaves each run as a `NumericText`. Once the
dtype is known, `NumericText.to_array` reads it with bytes and numpy
operations, never a Python loop over the numbers (about 0.1 ms for that
image): it checks that the brackets and commas form an exactly rectangular
array and that each slot holds one integer, then `np.fromstring` reads the
integers between the commas. Whenever anything is not exactly as expected (a
ragged list, a float for an integer input, `true`, a stray character) it
returns None, and the caller falls back to `json.loads(text)`, which gives
the usual result or error message. The fast path never accepts what the
plain path would refuse, apart from JSON's spelling of numbers (leading
zeros).

Imports only numpy and the standard library.
"""

from __future__ import annotations

import functools
import json
import math
import re
import secrets

import numpy as np

MIN_FAST_CHARS = 512  # shorter runs are left to json.loads
MAX_DEPTH = 16  # deeper arrays are left to json.loads
# A string literal (kept as is) or a bracketed run of number characters.
_RUNS = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|\[[0-9\s,.eE+\-\[\]]*+')
_PLACEHOLDER = f"\x00numeric-{secrets.token_hex(8)}:"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)[1:-1]  # the NUL written as \u0000


class NumericText:
    """A JSON array of numbers, kept as text until its dtype is known."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def to_array(self, dtype: np.dtype, check_shape=None) -> np.ndarray | None:
        """The array, or None when the fast path cannot be sure (use json).

        `check_shape(shape)`, when given, sees the shape before any value is
        read and may raise (the server's `--max_tensor_elements`).
        """
        dtype = np.dtype(dtype)
        if dtype.kind not in "iuf":
            return None
        data = self.text.encode("utf-8")
        classes = data.translate(_CLASSES)
        if b"\x00" in classes:
            return None  # floats, exponents, other whitespace: json decides.
        skeleton = data.translate(None, b"0123456789- ")
        shape = _checked_shape(skeleton)
        if shape is None:
            return None
        if check_shape is not None:
            check_shape(shape)
        values = _integers(data, classes, math.prod(shape))
        if values is None:
            return None
        if dtype.kind == "f" and np.abs(values).max() > 2**53:
            return None
        return values.reshape(shape)

    def plain(self):
        """The value as `json.loads` gives it."""
        return json.loads(self.text)


# Each byte's class: 1 digit, 2 "-", 3 "[", 4 ",", 5 "]", 6 " ", 0 any other.
_CLASS_OF = dict.fromkeys(b"0123456789", 1) | dict(zip(b"-[,] ", range(2, 7)))
_CLASSES = bytes(_CLASS_OF.get(byte, 0) for byte in range(256))
# Which class may follow which, in an array of JSON integers (a space only
# after a comma, as `json.dumps` writes: elsewhere it could split a number).
_FOLLOWS = {
    1: (1, 4, 5),
    2: (1,),
    3: (1, 2, 3),
    4: (1, 2, 3, 6),
    5: (4, 5),
    6: (1, 2, 3),
}
_ALLOWED_PAIRS = np.zeros(64, bool)
for _first, _nexts in _FOLLOWS.items():
    _ALLOWED_PAIRS[[8 * _first + n for n in _nexts]] = True


def _integers(data: bytes, classes: bytes, count: int) -> np.ndarray | None:
    """The `count` integers in `data` (whose skeleton is checked), or None.

    Its brackets and commas form the skeleton of `count` slots, so it is
    valid JSON when every slot holds one JSON integer. That holds when every
    pair of neighbouring characters is allowed (`_FOLLOWS`: no empty slot as
    in `,,` or `[]`, no number touching a bracket from the outside as in
    `]1` or `1[`, a `-` only first in a number and followed by a digit, a
    space only after a comma) and no number has more than 18 digits (int64
    cannot overflow). Then numpy reads the numbers between the commas.
    """
    codes = np.frombuffer(classes, np.uint8)
    if not np.take(_ALLOWED_PAIRS, codes[:-1] * np.uint8(8) + codes[1:]).all():
        return None
    if b"\x01" * 19 in classes:
        return None
    try:
        # Brackets become blanks, which numpy skips around the commas.
        values = np.fromstring(data.translate(_BRACKETS_AS_BLANKS), np.int64, sep=",")
    except ValueError:
        return None
    return values if values.size == count else None


_BRACKETS_AS_BLANKS = bytes.maketrans(b"[]", b"  ")
# Shapes read recently, by the length of their skeleton: a request like the
# last one is checked with one comparison instead of scanning its skeleton.
_RECENT_SHAPES: dict[int, tuple[int, ...]] = {}


def _checked_shape(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape of an exactly rectangular `skeleton`, else None."""
    shape = _RECENT_SHAPES.get(len(skeleton))
    if shape is not None and skeleton == _skeleton(shape):
        return shape
    shape = _shape(skeleton)
    if shape is None or skeleton != _skeleton(shape):
        return None
    if len(_RECENT_SHAPES) >= 64:
        _RECENT_SHAPES.clear()
    _RECENT_SHAPES[len(skeleton)] = shape
    return shape


def _shape(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape that `skeleton` has if it is rectangular (the caller checks).

    Each inner size is read from the first element at its level; the outer
    size then follows from the length, so only the first element is scanned.
    """
    depth = len(skeleton) - len(skeleton.lstrip(b"["))
    if not 0 < depth <= MAX_DEPTH:
        return None
    inner = []
    for level in range(1, depth):
        end = skeleton.find(b"]" * (depth - level), level)
        if end < 0:
            return None
        closing = b"]" * (depth - level - 1) + b","
        inner.append(skeleton.count(closing, level, end + 1) + 1)
    # len(_skeleton((n, *inner))) == n * (len(_skeleton(inner)) + 1) + 1
    element = _skeleton_length(inner) + 1
    outer, extra = divmod(len(skeleton) - 1, element)
    if extra or outer < 1:
        return None
    return (outer, *inner)


def _skeleton_length(shape: list[int]) -> int:
    length = 0  # a scalar slot
    for size in reversed(shape):
        length = size * (length + 1) + 1
    return length


@functools.lru_cache(maxsize=64)
def _skeleton(shape: tuple[int, ...]) -> bytes:
    """Brackets and commas of a rectangular array: (2, 2) -> b"[[,],[,]]"."""
    inner = b"[" + b"," * (shape[-1] - 1) + b"]"
    for size in reversed(shape[:-1]):
        inner = b"[" + b",".join([inner] * size) + b"]"
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
    run of as many `]` as it opens with, before the next quote or brace.
    Its brackets are not counted here: `NumericText` reads only an exactly
    rectangular run (balanced by construction) and leaves any other to
    `json.loads`, and a run cut short inside a ragged array leaves its
    unmatched `]` in the rest of the body, which then fails to parse, so
    `loads` falls back to `json.loads` of the whole body. Each candidate's
    search ends at the next quote or brace and the scan resumes there, so
    the whole pass is linear in the body's length.
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
        limit = _next_quote_or_brace(body, start)
        position = limit  # no key, so no other candidate, before `limit`
        depth = 1
        while depth <= MAX_DEPTH and body.startswith("[", start + depth):
            depth += 1
        close = body.find("]" * depth, start, limit)
        if depth > MAX_DEPTH or close < 0:
            continue
        if close + depth - start >= MIN_FAST_CHARS:
            runs.append((start, close + depth))


def _next_quote_or_brace(body: str, start: int) -> int:
    """The index of the first `"`, `{` or `}` from `start` (len(body) if none)."""
    limit = body.find('"', start)
    limit = len(body) if limit < 0 else limit
    for brace in "{}":  # searched only up to the quote: linear overall
        found = body.find(brace, start, limit)
        limit = limit if found < 0 else found
    return limit


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
