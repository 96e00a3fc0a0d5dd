"""Who is calling, and what they may do: OAuth2 bearer tokens (JWT, RS256) checked against
the issuer's published keys (JWKS), their issuer, audience and expiry.

A token names its holder (`sub`), `roles` (of `ROLES`) and, for roles bound to a municipality,
`municipalities` (kommunekoder); where a Keycloak token carries them is read too (`ClaimMapping`).
In production the keys come from `AUTH_JWKS_URL` (the
identity provider's, e.g. Keycloak's `.../protocol/openid-connect/certs`; a `file://` URL for a
mounted JWKS works too). In development, without it, a signing key is made once under
`DATA_DIR/auth/` with one ready token per role (`tokens.json`, `{role: token}`).
"""

import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from shared.municipalities import municipalities
from shared.problems import Problem
from shared.settings import ServiceSettings, TokenClaimSettings

INTEGRATION, CASEWORKER, EVALUATOR, ADMIN = ROLES = ("integration", "caseworker", "evaluator", "admin")
DEV_KEY_ID = "frisag-development"
DEV_TOKEN_DAYS = 30
CHECKED_TOKENS = 10_000  # tokens remembered as checked, at most
MAX_SUBJECT = 256  # characters of a token's `sub`, as the audit log keeps it
# the token as OpenAPI names it (a generated client's `AuthenticatedClient`, Swagger UI's
# "Authorize"); without one `requires` answers the problem, not FastAPI
BEARER = HTTPBearer(scheme_name="bearer", bearerFormat="JWT", auto_error=False,
                    description="An OAuth2 access token (JWT, RS256) from the identity provider")
# the development tokens: what each role's holder may act for
DEV_PRINCIPALS = {
    INTEGRATION: ("dev-integration", sorted(municipalities())),  # a jobcenter system serving them all
    CASEWORKER: ("dev-caseworker-aalborg", ["851"]),
    EVALUATOR: ("dev-evaluator", []),
    ADMIN: ("dev-admin", []),
}


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    municipalities: frozenset[str]
    username: str | None = None  # the token's `preferred_username`: whom `subject` is, to a person

    def acts_for(self, municipality: str | None) -> bool:
        return municipality in self.municipalities


@dataclass(frozen=True)
class ClaimMapping:
    """Where a token's audience, roles and municipalities are read, besides Frisag's own `aud`,
    `roles` and `municipalities`. The defaults read a Keycloak access token as Keycloak shapes it:

    - audience: a token whose `aud` does not name the audience is still for Frisag when it was
      issued to Frisag's client (`azp` is `client_id`, `accept_azp`): Keycloak names in `aud` only
      the clients whose roles the user holds (`account`, the account console), not the client that
      asked for the token. Only that client holds such a token, so it cannot come from elsewhere;
      another client's token must name the audience (Keycloak's audience mapper).
    - roles: `roles`, the realm roles (`realm_access.roles`, unless `realm_roles` is false: in a
      realm shared with other applications a realm role `admin` may be theirs) and Frisag's client
      roles (`resource_access.<client_id>.roles`); other clients' roles grant nothing.
    - municipalities: the claim `municipalities_claim` (dotted: nested), one kommunekode or a
      list: a user attribute Keycloak maps as a list only when its mapper is multivalued."""

    client_id: str = "frisag"
    accept_azp: bool = True
    realm_roles: bool = True
    municipalities_claim: str = "municipalities"

    @classmethod
    def of(cls, settings: TokenClaimSettings) -> "ClaimMapping":
        return cls(settings.auth_client_id, settings.auth_accept_azp, settings.auth_realm_roles,
                   settings.auth_municipalities_claim)


class Authenticator:
    """Checks bearer tokens against the keys at `jwks_url`: over HTTP(S) fetched when a token
    names a key not seen yet, then cached; a `file://` JWKS is read once."""

    def __init__(self, jwks_url: str, issuer: str, audience: str, mapping: ClaimMapping = ClaimMapping()) -> None:
        self.issuer, self.audience, self.mapping = issuer, audience, mapping
        self._checked: dict[str, tuple[Principal, float]] = {}  # token -> (holder, expiry)
        if jwks_url.startswith("file://"):
            keys = jwt.PyJWKSet.from_json(Path(urlsplit(jwks_url).path).read_text())
            self._key_of = lambda token: keys[jwt.get_unverified_header(token).get("kid", "")]
        else:
            self._key_of = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10).get_signing_key_from_jwt

    def principal(self, token: str) -> Principal:
        """The token's holder; a token already checked is not checked again until it expires
        (a jobcenter system sends the same token with every request: checking costs ~0.15 ms)."""
        known = self.known(token)
        if known is not None:
            return known
        principal, expires = self._check(token)
        if len(self._checked) >= CHECKED_TOKENS:
            self._checked.clear()  # crude, and rare: a few thousand callers hold live tokens
        self._checked[token] = (principal, expires)
        return principal

    def known(self, token: str) -> Principal | None:
        """The holder of a token checked before that has not expired; None otherwise."""
        known = self._checked.get(token)
        return known[0] if known is not None and known[1] > time.time() else None

    def _check(self, token: str) -> tuple[Principal, float]:
        try:
            key = self._key_of(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=self.issuer, leeway=30,
                                options={"require": ["exp", "iss"], "verify_aud": False})  # the audience: below
        except jwt.PyJWKClientConnectionError:
            raise Problem(503, "keys-unavailable", "The identity provider's keys cannot be fetched") from None
        except KeyError:
            raise unauthenticated("invalid token: signed with a key the issuer does not publish") from None
        except jwt.PyJWTError as exc:
            raise unauthenticated(f"invalid token: {exc}") from None
        try:
            expires = float(claims["exp"])
        except OverflowError:  # PyJWT compares integers of any size; a clock holds none this large
            raise unauthenticated("invalid token: exp is no date") from None
        if str(claims.get("typ", "Bearer")).lower() != "bearer":  # Keycloak's ID token: `ID`; refresh token: `Refresh`
            raise unauthenticated(f"invalid token: typ {claims['typ']!r}: an ID token (or another that is not an "
                                  "access token) tells the client who signed in; the APIs take the access token")
        self._check_audience(claims)
        # the audit log needs a holder that stays the same: a username may be renamed, or given to another
        if "sub" not in claims:
            raise unauthenticated("invalid token: it names no holder (sub), whom the audit log records; a Keycloak "
                                  "lightweight access token, or a client without the basic client scope (its sub "
                                  "mapper)?")
        subject = claims["sub"]  # a string: PyJWT refuses any other
        # as the audit log keeps it: one line that names someone
        if not 0 < len(subject) <= MAX_SUBJECT or subject.isspace() or any(ord(c) < 32 or ord(c) == 127
                                                                            for c in subject):
            raise unauthenticated(f"invalid token: sub must be a string of 1 to {MAX_SUBJECT} characters, not all "
                                  "blank, none of them a control character")
        mapping = self.mapping
        roles = _values(claims, ["roles"])
        if mapping.realm_roles:
            roles += _values(claims, ["realm_access", "roles"])
        if mapping.client_id:
            roles += _values(claims, ["resource_access", mapping.client_id, "roles"])
        codes = _values(claims, mapping.municipalities_claim.split("."))
        username = claims.get("preferred_username")
        # roles and kommunekoder it does not know are nothing this service grants
        known = municipalities()
        return Principal(subject, frozenset(roles) & set(ROLES), frozenset(c for c in codes if c in known),
                         str(username) if username is not None else None), expires

    def _check_audience(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud", [])
        if self.audience in (audience if isinstance(audience, list) else [audience]):
            return
        if self.mapping.accept_azp and self.mapping.client_id and claims.get("azp") == self.mapping.client_id:
            return  # issued to Frisag's client (see ClaimMapping)
        raise unauthenticated(f"invalid token: not for Frisag: its aud does not name {self.audience!r}" + (
            f" nor was it issued to the client {self.mapping.client_id!r} (azp)"
            if self.mapping.accept_azp and self.mapping.client_id else ""))


def _values(claims: dict[str, Any], path: list[str]) -> list[str]:
    """The claim at `path` (nested objects): absent, none; one value, or a list of them."""
    found: Any = claims
    for name in path:
        if found is None:
            return []
        if not isinstance(found, dict):
            raise unauthenticated(f"invalid token: {'.'.join(path)} must be a value or a list of them")
        found = found.get(name)
    if found is None:
        return []
    values = found if isinstance(found, list) else [found]
    if not all(isinstance(v, (str, int)) for v in values):
        raise unauthenticated(f"invalid token: {'.'.join(path)} must be a value or a list of them")
    return [str(v) for v in values]


def unauthenticated(reason: str) -> Problem:
    return Problem(401, "unauthenticated", "Not authenticated", reason,
                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def authenticator(settings: ServiceSettings) -> Authenticator:
    if settings.auth_jwks_url:
        return Authenticator(settings.auth_jwks_url, settings.auth_issuer, settings.auth_audience,
                             ClaimMapping.of(settings))
    jwks = development_keys(settings.data_dir)
    if not (jwks.parent / "tokens.json").exists():
        development_tokens(settings)
    return Authenticator(jwks.resolve().as_uri(), settings.auth_issuer, settings.auth_audience,
                         ClaimMapping.of(settings))


def requires(*roles: str):
    """A FastAPI dependency: the caller's `Principal`, holding one of `roles`; else 401 or 403."""

    async def principal(request: Request,
                        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
        if bearer is None:
            raise Problem(401, "unauthenticated", "Not authenticated", "send an OAuth2 bearer token",
                          headers={"WWW-Authenticate": "Bearer"})
        token, authenticator = bearer.credentials, request.app.state.service.authenticator
        # a token seen before is answered on the event loop; checking a new one may fetch the
        # issuer's keys, so it goes to a worker thread (as a plain `def` dependency always would)
        caller = authenticator.known(token) or await run_in_threadpool(authenticator.principal, token)
        request.state.principal = caller  # for the audit log, refusals included
        if not caller.roles & set(roles):
            raise Problem(403, "forbidden", "Forbidden", f"needs the role {' or '.join(roles)}")
        return caller

    return principal


def forbidden(reason: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", reason)


# development: a key of our own, its JWKS as a file, and a token per role


def development_keys(data_dir: Path) -> Path:
    """The development JWKS file under `data_dir`, made with a new signing key the first time
    (several processes starting together make it once)."""
    folder = data_dir / "auth"
    jwks = folder / "jwks.json"
    if jwks.exists():
        return jwks
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / "signing-key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process is making it
        for _ in range(100):
            if jwks.exists():
                return jwks
            time.sleep(0.05)
        raise
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    written = jwks.with_suffix(".tmp")
    written.write_text(json.dumps({"keys": [{**public, "kid": DEV_KEY_ID, "use": "sig", "alg": "RS256"}]}))
    written.replace(jwks)
    return jwks


def development_tokens(settings: ServiceSettings) -> Path:
    """Write one fresh token per role, signed with the development key, to
    `DATA_DIR/auth/tokens.json` ({role: token}); return its path."""
    tokens = {role: development_token(settings, subject, [role], municipalities)
              for role, (subject, municipalities) in DEV_PRINCIPALS.items()}
    folder = settings.data_dir / "auth"
    path, written = folder / "tokens.json", folder / f"tokens.{os.getpid()}.tmp"
    written.write_text(json.dumps(tokens, indent=2) + "\n")
    written.replace(path)
    return path


def development_token(settings: ServiceSettings, subject: str, roles: list[str], municipalities: list[str]) -> str:
    """A token valid `DEV_TOKEN_DAYS`, signed with the development key under `DATA_DIR/auth/`
    (made the first time)."""
    key = (development_keys(settings.data_dir).parent / "signing-key.pem").read_bytes()
    return sign(key, settings, subject, roles, municipalities, DEV_TOKEN_DAYS * 86400)


def sign(private_key: bytes, settings: ServiceSettings, subject: str, roles: list[str],
         municipalities: list[str], lifetime: int, **claims) -> str:
    now = int(time.time())
    payload = {"iss": settings.auth_issuer, "aud": settings.auth_audience, "sub": subject, "iat": now,
               "exp": now + lifetime, "roles": roles, "municipalities": municipalities, **claims}
    return jwt.encode(payload, _signing_key(private_key), algorithm="RS256", headers={"kid": DEV_KEY_ID})


@functools.lru_cache(maxsize=4)
def _signing_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The key, loaded once: loading checks it, some 30 ms, a hundred times signing with it."""
    return serialization.load_pem_private_key(pem, password=None)
