"""serving.numeric_json: the fast path agrees with json.loads or steps aside."""

import json

import numpy as np
import pytest

from serving import numeric_json
from serving.numeric_json import NumericText

IMAGE = np.arange(2 * 6 * 6 * 3).reshape(2, 6, 6, 3) % 256


def body_with(value_text: str) -> str:
    return '{"signature_name": "x", "instances": ' + value_text + "}"


def fast_or_none(value_text: str, dtype=np.uint8):
    value = numeric_json.loads(body_with(value_text))["instances"]
    assert isinstance(value, NumericText), "the fast path did not pick this up"
    return value.to_array(dtype)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(IMAGE.tolist()),  # Python's ", " separators
        json.dumps(IMAGE.tolist(), separators=(",", ":")),
        json.dumps((-IMAGE).tolist()),
    ],
)
def test_fast_path_equals_json(text):
    got = fast_or_none(text, np.int32)
    np.testing.assert_array_equal(got, np.asarray(json.loads(text)))


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("[3, 4, 5]", "[3, 4]", 1),  # ragged
        lambda t: t.replace("[3, 4, 5]", "[3, 4, 5, 6]", 1),  # ragged
        lambda t: t.replace("3, 4, 5", "3, 4.5, 5", 1),  # a float
        lambda t: t.replace("3, 4, 5", "3, 4 5", 1),  # a missing comma
        lambda t: t.replace("3, 4, 5", "3, 4-5, 5", 1),  # a sign inside
        lambda t: t.replace("3, 4, 5", "3, +4, 5", 1),  # not JSON
        lambda t: t.replace("3, 4, 5", "3,, 5", 1),  # an empty element
        lambda t: t.replace("3, 4, 5", "3, 1e2, 5", 1),  # exponent
        lambda t: t.replace("[3, 4, 5]", "[3, 4, 5]\n", 1),  # other whitespace
        lambda t: t.replace("], [3, 4, 5]", "] 3, [4, 5, 6]", 1),  # "]3": not JSON
        lambda t: t.replace("[3, 4, 5]", "[3, 4, 5] ", 1),  # a space not after ","
        lambda t: t.replace("3, 4, 5", "3, -, 5", 1),  # a sign without digits
        lambda t: t.replace("3, 4, 5", "3, --4, 5", 1),  # two signs
        lambda t: t.replace("3, 4, 5", "3, 4, 1234567890123456789", 1),  # > int64
        lambda t: t.replace("3, 4, 5", "3, true, 5", 1),  # not a number
        lambda t: t.replace("3, 4, 5", "3,  4, 5", 1),  # two spaces
    ],
)
def test_fast_path_steps_aside_when_unsure(edit):
    text = edit(json.dumps(IMAGE.tolist()))
    assert fast_or_none(text) is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("[3,4,5]", "[3,4,]5", 1),  # right count, "]5" outside
        lambda t: t.replace("[3,4,5]", "3[,4,5]", 1),  # right count, "3[" outside
        lambda t: t.replace("[3,4,5]", "[3,,4]", 1),  # an empty slot
        lambda t: t.replace("[3,4,5]", "[3,4,5-]", 1),  # a sign after a number
    ],
)
def test_compact_text_with_numbers_outside_their_slots_steps_aside(edit):
    text = edit(json.dumps(IMAGE.tolist(), separators=(",", ":")))
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert fast_or_none(text) is None


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32])
def test_long_and_negative_numbers_read_exactly(dtype):
    values = np.tile([[0, -7, 123456789012345678], [-1, 99, -123456789012345678]], 30)
    text = json.dumps(values.tolist())
    got = fast_or_none(text.replace(", ", ","), dtype)
    if dtype == np.float32:
        assert got is None  # beyond 2**53: json reads it, as a float would
    else:
        np.testing.assert_array_equal(got, values)
        assert got.dtype == np.int64  # the caller range-checks, then casts


def test_strings_and_named_values_are_left_alone():
    image = json.dumps(IMAGE.tolist())
    body = (
        '{"a": "[1, 2, 3] \\" : [4]", "b": [{"c": '
        + image
        + '}, {"c": '
        + image
        + '}], "d": [{"e": 1}, '
        + image
        + "]}"
    )
    tree = numeric_json.loads(body)
    plain = json.loads(body)
    assert tree["a"] == plain["a"]
    assert [isinstance(x["c"], NumericText) for x in tree["b"]] == [True, True]
    assert tree["d"] == plain["d"]  # a later list element: not replaced
    np.testing.assert_array_equal(tree["b"][1]["c"].to_array(np.uint8), IMAGE)


def test_invalid_json_is_still_refused():
    image = json.dumps(IMAGE.tolist())
    with pytest.raises(json.JSONDecodeError):
        numeric_json.loads('{"instances": ' + image + ", }")
    with pytest.raises(json.JSONDecodeError):
        numeric_json.loads('{"instances": ' + image[:-1])


def test_pathological_bodies_stay_linear():
    import time

    started = time.monotonic()
    nested = '{"a":[' * 20000 + "1" + "]}" * 20000
    with pytest.raises((json.JSONDecodeError, RecursionError)):
        numeric_json.loads(nested)
    deep = '{"instances": ' + "[" * 5000 + "1" + "]" * 5000 + "}"
    with pytest.raises(RecursionError):
        numeric_json.loads(deep)
    many = "{" + ",".join(f'"k{i}": [{i}]' for i in range(50000)) + "}"
    assert len(numeric_json.loads(many)) == 50000
    assert time.monotonic() - started < 5


def test_shapes_with_skeletons_of_the_same_length_are_told_apart():
    # [[,,,],[,,,]] and [[,],[,],[,]] are both 13 bytes long.
    two_by_four = np.arange(8).reshape(2, 4)
    three_by_two = np.arange(6).reshape(3, 2)
    for values in (two_by_four, three_by_two, two_by_four):
        got = NumericText(json.dumps((values * 1000).tolist())).to_array(np.int64)
        np.testing.assert_array_equal(got, values * 1000)


@pytest.mark.parametrize(
    "shape",
    [
        (1,),
        (7,),
        (1, 1),
        (3, 1),
        (1, 3),
        (2, 3, 4),
        (1, 8, 8, 3),
        (2, 1, 1, 1),
        (1, 1, 5),
    ],
)
@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
def test_every_rectangular_shape_reads_as_json_does(shape, separators):
    values = np.random.default_rng(sum(shape)).integers(-300, 300, shape)
    text = json.dumps(values.tolist(), separators=separators)
    got = NumericText(text).to_array(np.int64)
    assert got is not None
    np.testing.assert_array_equal(got, np.asarray(json.loads(text)))
    assert got.shape == shape


def test_empty_inner_lists_step_aside():
    assert NumericText(json.dumps([[], [], []])).to_array(np.int64) is None
