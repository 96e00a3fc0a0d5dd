"""A small but real OpenID Connect provider for the tests, served over HTTP like any other
(`LiveServer`): discovery, an authorization endpoint that signs the configured user in at once,
a token endpoint that checks the client, the redirect URI and the PKCE verifier (S256) against
what the authorization request carried, its keys as a JWKS, and an end-session endpoint.

Its access tokens carry what the APIs read (`roles`, `municipalities`, their audience); its ID
tokens the authorization request's nonce. What it was asked is kept, for the tests to read."""

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

KEY_ID = "test-provider"


def basic(authorization: str) -> tuple[str, str] | None:
    """HTTP Basic's client id and secret, each form-decoded after (RFC 6749, 2.3.1)."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme != "Basic":
        return None
    client_id, colon, secret = base64.b64decode(encoded).decode().partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if colon else None


@dataclass
class User:
    subject: str = "anne@aalborg.dk"
    roles: list[str] = field(default_factory=lambda: ["caseworker"])
    municipalities: list[str] = field(default_factory=lambda: ["851"])
    username: str | None = None  # its `preferred_username`, if the provider sends one


class Provider:
    """Set `issuer` to the address it is served at before it is asked anything."""

    def __init__(self, client_id: str, redirect_uri: str, client_secret: str | None = None,
                 audience: str = "frisag") -> None:
        self.client_id, self.redirect_uri, self.client_secret, self.audience = client_id, redirect_uri, client_secret, audience
        self.issuer = ""
        self.user = User()
        self.access_token_lifetime = 300
        self.deny = False  # the user declines: the authorization endpoint answers error=access_denied
        self.id_token_nonce: str | None = None  # an ID token with this nonce instead of the request's
        self.authorizations: list[dict[str, str]] = []  # the authorization requests' parameters
        self.exchanges: list[dict[str, str]] = []  # the token requests' forms
        self.ended: list[dict[str, str]] = []  # the end-session requests' parameters
        self._codes: dict[str, dict[str, Any]] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.app = self._app()

    def _sign(self, claims: dict[str, Any]) -> str:
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": KEY_ID})

    def access_token(self, user: User, lifetime: int | None = None) -> str:
        now = int(time.time())
        username = {"preferred_username": user.username} if user.username else {}
        return self._sign({"iss": self.issuer, "aud": self.audience, "sub": user.subject, "iat": now,
                           "exp": now + (self.access_token_lifetime if lifetime is None else lifetime),
                           "roles": user.roles, "municipalities": user.municipalities, "azp": self.client_id,
                           **username})

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def configuration() -> dict[str, Any]:
            return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                    "end_session_endpoint": f"{self.issuer}/logout", "response_types_supported": ["code"],
                    "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"]}

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
            return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

        @app.get("/authorize")
        def authorize(request: Request) -> Response:
            asked = dict(request.query_params)
            self.authorizations.append(asked)
            if asked.get("client_id") != self.client_id or asked.get("redirect_uri") != self.redirect_uri:
                return Response("unknown client or redirect URI", status_code=400)  # never redirect to it
            back = asked["redirect_uri"] + "?"
            state = {"state": asked["state"]} if "state" in asked else {}
            if asked.get("response_type") != "code" or asked.get("code_challenge_method") != "S256" \
                    or not asked.get("code_challenge"):  # PKCE required, S256 only
                return RedirectResponse(back + urlencode({"error": "invalid_request", **state}), status_code=302)
            if self.deny:
                return RedirectResponse(back + urlencode({"error": "access_denied", **state}), status_code=302)
            code = secrets.token_urlsafe(24)
            self._codes[code] = {"redirect_uri": asked["redirect_uri"], "challenge": asked["code_challenge"],
                                 "nonce": asked.get("nonce"), "user": self.user}
            return RedirectResponse(back + urlencode({"code": code, **state}), status_code=302)

        @app.post("/token")
        async def token(request: Request) -> Response:
            form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
            grant_type, code, redirect_uri, code_verifier, client_id = (
                form.get(name, "") for name in ("grant_type", "code", "redirect_uri", "code_verifier", "client_id"))
            self.exchanges.append({**form, "authorization": request.headers.get("authorization", "")})
            if self.client_secret is not None:  # a confidential client: client_secret_basic
                if basic(request.headers.get("authorization", "")) != (self.client_id, self.client_secret):
                    return JSONResponse({"error": "invalid_client"}, status_code=401)
            elif client_id != self.client_id:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            granted = self._codes.pop(code, None)  # a code is good once
            verified = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if grant_type != "authorization_code" or granted is None or redirect_uri != granted["redirect_uri"] \
                    or verified != granted["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            user, now = granted["user"], int(time.time())
            nonce = self.id_token_nonce if self.id_token_nonce is not None else granted["nonce"]
            id_token = self._sign({"iss": self.issuer, "aud": self.client_id, "sub": user.subject, "iat": now,
                                   "exp": now + 300, "nonce": nonce})
            return JSONResponse({"access_token": self.access_token(user), "id_token": id_token, "token_type": "Bearer",
                                 "expires_in": self.access_token_lifetime}, headers={"Cache-Control": "no-store"})

        @app.get("/logout")
        def logout(request: Request) -> Response:
            asked = dict(request.query_params)
            self.ended.append(asked)
            return RedirectResponse(asked["post_logout_redirect_uri"], status_code=302)

        return app
