"""CPR numbers: validation, and the keyed pseudonym that replaces them outside the case store."""

import hashlib
import hmac
import re
from datetime import date

_CPR = re.compile(r"^(\d{2})(\d{2})(\d{2})-?(\d{4})$")


def normalise(cpr: str) -> str:
    """Return `DDMMYY-SSSS`, or raise ValueError naming what is wrong."""
    m = _CPR.match(cpr)
    if not m:
        raise ValueError("must be DDMMYY-SSSS or DDMMYYSSSS")
    birth_date(cpr)
    return f"{m[1]}{m[2]}{m[3]}-{m[4]}"


def birth_date(cpr: str) -> date:
    """The birth date a CPR number encodes; the 7th digit fixes the century (CPR-kontoret's table)."""
    m = _CPR.match(cpr)
    if not m:
        raise ValueError("must be DDMMYY-SSSS or DDMMYYSSSS")
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
        raise ValueError("does not encode a valid birth date") from None


def pseudonym(cpr: str, key: bytes) -> str:
    """A stable keyed pseudonym (HMAC-SHA256): the same citizen gets the same value, nobody
    without the key can get back to the CPR number or test a guess."""
    return hmac.new(key, normalise(cpr).encode(), hashlib.sha256).hexdigest()[:32]
