"""The nesting limit for JSON bodies, measured without parsing: against the depth of the value
the JSON was made from, for any JSON (strings full of brackets, quotes and backslashes
included), at the limit and one over; and fast on the worst bodies the size limit lets in."""

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.hardening import too_deep

LIMIT = 4
TRICKY = st.text(alphabet='[]{}"\\ax\u00e6', max_size=8)
VALUES = st.recursive(st.none() | st.integers() | TRICKY,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY, inner, max_size=3),
                      max_leaves=12)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def nested(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = ["]", {"[": "{"}, value]
    return value


@settings(max_examples=500, deadline=None)
@given(value=VALUES, ascii_only=st.booleans())
def test_the_depth_is_that_of_the_value(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert too_deep(body, LIMIT) == (depth(value) > LIMIT)


@pytest.mark.parametrize("levels", [LIMIT, LIMIT + 1])
def test_at_the_limit_and_one_over(levels):
    assert depth(nested(levels)) == levels
    assert too_deep(json.dumps(nested(levels)).encode(), LIMIT) == (levels > LIMIT)
    assert too_deep(b"[" * levels + b"]" * levels, LIMIT) == (levels > LIMIT)


def test_brackets_in_strings_do_not_count():
    assert not too_deep(json.dumps(["[[[[[[[[", {"{{{{{{": "]]]]]]"}, '\\"[[[[[[['] * 100).encode(), LIMIT)
    assert too_deep(b'["]", "]", "]", "]", "]", [[[[[]]]]]]', LIMIT)  # closers in strings open nothing
    assert too_deep(b'["\\\\", [[[[[]]]]]]', LIMIT)  # an escaped backslash does not escape the quote


def test_unfinished_json_counts_what_it_opens():
    assert too_deep(b"[[[[[[[[[[", LIMIT)
    assert too_deep(b'[[],[],[],[],[[[[["', LIMIT)
    assert not too_deep(b'[[],[],[],[],[["abc', LIMIT)  # malformed, not too deep: the parser says so


@pytest.mark.parametrize("body", [b"[" * 5_000_000 + b"]" * 5_000_000, b"[]" * 5_000_000,
                                  b"[[]" * 3_000_000, b'"' + b'\\"[' * 3_000_000, b'"[' * 5_000_000,
                                  b"[" * 31 + b'"\\\\' * 3_000_000])
def test_the_worst_bodies_of_10_mib_take_little_time(body):
    started = time.process_time()
    too_deep(body, 32)
    assert time.process_time() - started < 1.0
