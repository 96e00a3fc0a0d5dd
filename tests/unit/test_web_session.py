"""The session cookie's encryption (services/web/session.py): what the browser holds reads as
nothing, and only the key that made it, within the session's age, opens it."""

import json
import time
from base64 import b64encode, urlsafe_b64decode

import pytest
from itsdangerous import BadSignature

from services.web.session import Sealer

SESSION = b64encode(json.dumps({"token": "eyJhbGciOiJSUzI1NiJ9.secret", "role": "caseworker"}).encode())


def test_a_session_comes_back_as_it_went_and_reads_as_nothing_in_between():
    sealer = Sealer("k" * 32)
    sealed = sealer.sign(SESSION)
    assert sealer.unsign(sealed, max_age=3600) == SESSION
    opened = urlsafe_b64decode(sealed)
    assert b"eyJ" not in opened and b"caseworker" not in opened and b"token" not in opened
    assert sealer.sign(SESSION) != sealed  # a fresh IV each time


def test_another_key_a_changed_byte_or_an_old_session_is_refused():
    sealer = Sealer("k" * 32)
    sealed = sealer.sign(SESSION)
    with pytest.raises(BadSignature):
        Sealer("k" * 31 + "l").unsign(sealed, max_age=3600)
    changed = bytearray(urlsafe_b64decode(sealed))
    changed[40] ^= 1  # in the ciphertext
    with pytest.raises(BadSignature):
        sealer.unsign(b64encode(bytes(changed)).replace(b"+", b"-").replace(b"/", b"_"), max_age=3600)
    made_long_ago = sealer.fernet.encrypt_at_time(json.dumps({"role": "admin"}).encode(), int(time.time()) - 3601)
    with pytest.raises(BadSignature):
        sealer.unsign(made_long_ago, max_age=3600)
    assert sealer.unsign(made_long_ago, max_age=3700)  # within its age: taken
