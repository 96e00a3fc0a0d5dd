from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import cpr


def test_both_spellings_normalise_to_the_hyphenated_form():
    assert cpr.normalise("0101901234") == "010190-1234"
    assert cpr.normalise("010190-1234") == "010190-1234"


@pytest.mark.parametrize(
    "number, born",
    [
        ("010190-1234", date(1990, 1, 1)),  # 7th digit 0-3: 1900s
        ("010110-4234", date(2010, 1, 1)),  # 4 and yy <= 36: 2000s
        ("010150-4234", date(1950, 1, 1)),  # 4 and yy > 36: 1900s
        ("010150-5234", date(2050, 1, 1)),  # 5-8 and yy <= 57: 2000s
        ("010160-5234", date(1860, 1, 1)),  # 5-8 and yy > 57: 1800s
        ("290200-4234", date(2000, 2, 29)),
    ],
)
def test_birth_date_follows_the_century_digit(number, born):
    assert cpr.birth_date(number) == born


@pytest.mark.parametrize("number", ["3102901234", "0013901234", "290201-1234", "01019-1234", "0101901234x", "abcdefghij"])
def test_invalid_numbers_are_refused(number):
    with pytest.raises(ValueError):
        cpr.normalise(number)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)), st.integers(0, 3999))
def test_pseudonym_is_stable_keyed_and_hides_the_number(born, serial):
    number = f"{born:%d%m%y}-{serial:04d}"
    a = cpr.pseudonym(number, b"key-a")
    assert a == cpr.pseudonym(number.replace("-", ""), b"key-a")
    assert a != cpr.pseudonym(number, b"key-b")
    assert number.replace("-", "") not in a and f"{born:%d%m%y}" not in a[:6]
