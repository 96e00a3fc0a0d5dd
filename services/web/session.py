"""The session cookie, encrypted: it carries the user's access token, which the browser has no
use for and should not be able to read (nor anything that sees the cookie).

Starlette's SessionMiddleware, whose `signer` signs the session's JSON, given one that encrypts it
instead: Fernet (AES-128-CBC with HMAC-SHA256, and the time it was made, checked against the
session's age), keyed from SESSION_KEY."""

from base64 import b64decode, b64encode, urlsafe_b64encode

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp


class Sealer:
    """`sign` and `unsign` as itsdangerous' TimestampSigner has them, encrypting."""

    def __init__(self, key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"frisag web session").derive(key.encode())
        self.fernet = Fernet(urlsafe_b64encode(derived))

    def sign(self, data: bytes) -> bytes:
        # the middleware hands over base64: the JSON itself is encrypted, so the cookie does not grow twice
        return self.fernet.encrypt(b64decode(data))

    def unsign(self, data: bytes, max_age: int | None = None) -> bytes:
        try:
            return b64encode(self.fernet.decrypt(data, ttl=max_age))
        except InvalidToken:
            raise BadSignature("not a session of this key, or expired") from None


class EncryptedSessionMiddleware(SessionMiddleware):
    def __init__(self, app: ASGIApp, secret_key: str, **options) -> None:
        super().__init__(app, secret_key=secret_key, **options)
        self.signer = Sealer(secret_key)
