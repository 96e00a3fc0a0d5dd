import hashlib
import hmac
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import cpr


def test_both_spellings_normalise_to_the_hyphenated_form():
    assert cpr.normalise("0101901234") == "010190-1234"
    assert cpr.normalise("010190-1234") == "010190-1234"
    assert cpr.normalise("2711834821") == "271183-4821"  # day, month and year each in its place


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


@pytest.mark.parametrize("number", ["٠١٠١٩٠-١٢٣٤", "０１０１９０-１２３４", "010190-١٢٣٤", "0101９01234"])
def test_only_ascii_digits_make_a_cpr_number(number):
    # other scripts' digits would be a second spelling of 010190-1234, and a second pseudonym
    with pytest.raises(ValueError):
        cpr.normalise(number)


@pytest.mark.parametrize("number", ["٠١٠١٩٠-١٢٣٤", "０１０１９０-１２３４"])
def test_a_number_stored_in_other_digits_is_read_as_its_ascii_spelling(number):
    # stored before they were refused: the case can still be read, and its citizen is one citizen
    assert cpr.birth_date(number) == date(1990, 1, 1)
    assert cpr.pseudonym(number, b"k") == cpr.pseudonym("010190-1234", b"k")


@pytest.mark.parametrize(
    "number, born",
    [
        ("010136-4234", date(2036, 1, 1)),  # 4: yy 36 is the last of the 2000s
        ("010137-4234", date(1937, 1, 1)),
        ("010136-9234", date(2036, 1, 1)),  # 9 as 4
        ("010137-9234", date(1937, 1, 1)),
        ("010157-5234", date(2057, 1, 1)),  # 5-8: yy 57 is the last of the 2000s
        ("010158-8234", date(1858, 1, 1)),
        ("010199-3234", date(1999, 1, 1)),  # 0-3: always the 1900s
        ("010100-0234", date(1900, 1, 1)),
    ],
)
def test_the_century_boundaries(number, born):
    assert cpr.birth_date(number) == born


def test_a_birth_after_the_day_is_refused():
    number = "011226-4234"  # born 2026-12-01
    cpr.check_born_by(number, date(2026, 12, 1), "today")  # born today: fine
    cpr.check_born_by(number, date(2026, 12, 2), "today")
    with pytest.raises(ValueError, match=r"2026-12-01\) after today \(2026-11-30"):
        cpr.check_born_by(number, date(2026, 11, 30), "today")
    with pytest.raises(ValueError):
        cpr.check_born_by("010130-4234", date(2026, 12, 1), "today")  # read as 2030


@pytest.mark.parametrize(
    "text",
    ["borger 271183-4821 anbefales", "271183-4821", "2711834821", "cpr: 271183 4821", "(271183-4821)",
     "CPR-nr.2711834821.", "borger_2711834821", "٢٧١١٨٣-٤٨٢١", "２７１１８３４８２１", "030472-3917", "271183–4821"],
)
def test_cpr_numbers_are_found_in_text(text):
    assert cpr.find_in(text)


@pytest.mark.parametrize(
    "text",
    ["case-42", "momentum-000123", "borger anbefales ressourceforløb", "321183-4821", "271383-4821",
     "12345678901", "x2711834821", "2711834821y", "27118-34821", "3f2a0101-9012-4a5b-8c6d-010190123456",
     "01019012-3456-7890-abcd-ef0101901234", "ab010190-1234"],
)
def test_other_text_is_not_taken_for_a_cpr_number(text):
    assert not cpr.find_in(text)


@pytest.mark.parametrize("check", [cpr.normalise, cpr.birth_date])
def test_each_refusal_says_what_is_wrong(check):
    # the reason is what a 422 names for the field
    with pytest.raises(ValueError) as wrong_shape:
        check("01019-1234")
    assert str(wrong_shape.value) == "must be DDMMYY-SSSS or DDMMYYSSSS (digits 0-9)"
    with pytest.raises(ValueError) as no_such_day:
        check("310290-1234")
    assert str(no_such_day.value) == "does not encode a valid birth date"


def test_the_pseudonym_is_the_first_32_hex_digits_of_the_hmac_of_the_hyphenated_number():
    expected = hmac.new(b"key", b"010190-1234", hashlib.sha256).hexdigest()[:32]
    assert cpr.pseudonym("0101901234", b"key") == expected and len(expected) == 32
