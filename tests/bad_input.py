"""The classes of bad input every service refuses with a 4xx and a reason (issue 13), as values
for any query or path parameter, request bodies and token subjects: for the fuzzers, which put
them where the schema has a place (tests/integration/test_fuzz.py)."""

DEEP = b"[" * 1000 + b"]" * 1000
PARAMETERS = {
    "NUL bytes": ["\x00", "a\x00b", "2019-01-01|c-1\x00|1"],
    "extreme dates": ["0001-01-01", "1899-12-31", "3000-01-01", "9999-12-31", "0001-01-01T00:00:00+14:00",
                      "9999-12-31T23:59:59-14:00"],
    "huge numbers": ["9" * 30, "-" + "9" * 30, "1e999", "2019-01-01|x|" + "9" * 23],
    "overlong ids and subjects": ["a" * 65, "a" * 600],
}
BODIES = {
    "deep nesting": [DEEP, b'{"specversion": "1.0", "data": ' + DEEP + b"}", b'[{"data": {"a": ' + b"[" * 40 + b"]" * 40
                     + b"}}]"],
    "NUL bytes": [b'{"specversion": "1.0\\u0000", "subject": "c\\u0000"}', b"\x00"],
    "huge numbers": [b'{"specversion": 1e999, "data": {"interval_days": ' + b"9" * 400 + b"}}"],
}
SUBJECTS = ["a\x00b", "a" * 257]  # a token's `sub`
