"""CPR numbers: validation, and the keyed pseudonym that replaces them outside the case store."""

import hashlib
import hmac
import re
from datetime import date

# ASCII digits only: `\d` and int() also take other scripts' digits (٠١٠١٩٠, fullwidth ０１), which
# would give one citizen a second spelling, and so a second pseudonym.
_CPR = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})-?([0-9]{4})", re.ASCII)
# A CPR number written into other text: six digits of a date, a dash or space or nothing, four
# digits, not glued to other letters or digits (so UUIDs and longer numbers do not match), in
# any script's digits: a human typing it is not held to ASCII.
_CPR_SHAPED = re.compile(r"(?<![^\W_])(\d{2})(\d{2})(\d{2})[-\u2010-\u2015\u2212\s]?(\d{4})(?![^\W_])")


def normalise(cpr: str) -> str:
    """Return `DDMMYY-SSSS`, or raise ValueError naming what is wrong."""
    m = _CPR.fullmatch(cpr)
    if not m:
        raise ValueError("must be DDMMYY-SSSS or DDMMYYSSSS (digits 0-9)")
    birth_date(cpr)
    return f"{m[1]}{m[2]}{m[3]}-{m[4]}"


def birth_date(cpr: str) -> date:
    """The birth date a CPR number encodes. A number stored before only ASCII digits were
    accepted is read in ASCII digits: it must not stop its case from being read."""
    m = _CPR.fullmatch(_in_ascii_digits(cpr))
    if not m:
        raise ValueError("must be DDMMYY-SSSS or DDMMYYSSSS (digits 0-9)")
    born = _birth_date(m)
    if born is None:
        raise ValueError("does not encode a valid birth date")
    return born


def check_born_by(cpr: str, day: date, what: str) -> None:
    """Raise ValueError unless the citizen was born on or before `day` (`what` names the day)."""
    born = birth_date(cpr)
    if born > day:
        raise ValueError(f"encodes a birth date ({born}) after {what} ({day})")


def find_in(text: str) -> bool:
    """Whether the text holds something shaped like a CPR number (a valid date and a serial)."""
    return any(_birth_date(m) is not None for m in _CPR_SHAPED.finditer(text))


def _birth_date(m: re.Match) -> date | None:
    """The 7th digit fixes the century (CPR-kontoret's table)."""
    day, month, yy, seventh = int(m[1]), int(m[2]), int(m[3]), int(m[4][0])
    if seventh <= 3:
        century = 1900
    elif seventh in (4, 9):
        century = 2000 if yy <= 36 else 1900
    else:  # 5-8
        century = 2000 if yy <= 57 else 1800
    try:
        return date(century + yy, month, day)
    except ValueError:
        return None


def pseudonym(cpr: str, key: bytes) -> str:
    """A stable keyed pseudonym (HMAC-SHA256): the same citizen gets the same value, nobody
    without the key can get back to the CPR number or test a guess."""
    return hmac.new(key, normalise(_in_ascii_digits(cpr)).encode(), hashlib.sha256).hexdigest()[:32]


def _in_ascii_digits(text: str) -> str:
    """Any script's digits as ASCII ones: one citizen, one spelling (for numbers stored before
    only ASCII digits were accepted)."""
    return "".join(str(int(c)) if c.isdecimal() else c for c in text)
