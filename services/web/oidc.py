"""Signing in through the identity provider: OpenID Connect's authorization code flow with PKCE
(S256), as a server-side client (RFC 6749, RFC 7636, OpenID Connect Core 1.0).

`/log-ind` sends the user to the provider's authorization endpoint with a fresh `state`, `nonce`
and PKCE challenge, whose verifier stays in the (encrypted) session cookie; `/log-ind/retur` checks
the state, exchanges the code with the verifier, checks the ID token (the provider's signature,
issuer, audience Frisag's client, expiry, nonce) and checks the access token as the APIs do
(`shared.auth.Authenticator`): what it grants is what the session shows."""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import jwt
from starlette.concurrency import run_in_threadpool

from services.web.settings import WebSettings
from shared.auth import Authenticator, ClaimMapping, Principal
from shared.problems import Problem

LEEWAY = 30  # seconds of clock skew allowed, as the APIs allow
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")  # of the provider's configuration, used here


class SignInFailed(Exception):
    """The sign-in cannot be completed; `message` says why in Danish."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class RoundTrip:
    """What the session keeps while the user is at the provider."""
    state: str
    nonce: str
    verifier: str

    @classmethod
    def new(cls) -> "RoundTrip":
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))


def challenge(verifier: str) -> str:
    """PKCE's S256 code challenge: BASE64URL(SHA256(verifier)) without padding (RFC 7636, 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    principal: Principal  # as the APIs read the access token


class Provider:
    """The identity provider at AUTH_ISSUER, its OpenID configuration read once it is first needed."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.issuer = settings.auth_issuer
        self._configuration: dict | None = None
        self._id_token_keys: jwt.PyJWKClient | None = None
        # the access token checked with the APIs' own rules and keys
        self._access = Authenticator(settings.auth_jwks_url, settings.auth_issuer, settings.auth_audience,
                                     ClaimMapping.of(settings))

    async def configuration(self, http: httpx.AsyncClient) -> dict:
        if self._configuration is None:
            try:
                answer = await http.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
                answer.raise_for_status()
                found = answer.json()
            except (httpx.HTTPError, ValueError):
                raise SignInFailed(502, "Identitetsudbyderen svarer ikke lige nu. Prøv igen om lidt.") from None
            # the issuer it names must be the one asked (OpenID Connect Discovery 1.0, 4.3)
            if not isinstance(found, dict) or found.get("issuer") != self.issuer or not all(
                    isinstance(found.get(endpoint), str) for endpoint in ENDPOINTS):
                raise SignInFailed(502, "Identitetsudbyderens oplysninger passer ikke til den udsteder, Frisag er sat "
                                        "op med (AUTH_ISSUER). Kontakt driften.")
            self._configuration = found
            self._id_token_keys = jwt.PyJWKClient(found["jwks_uri"], cache_keys=True, lifespan=300, timeout=10)
        return self._configuration

    async def authorization_url(self, http: httpx.AsyncClient, trip: RoundTrip) -> str:
        endpoint = (await self.configuration(http))["authorization_endpoint"]
        query = {"response_type": "code", "client_id": self.settings.oidc_client_id,
                 "redirect_uri": self.settings.redirect_uri, "scope": "openid", "state": trip.state,
                 "nonce": trip.nonce, "code_challenge": challenge(trip.verifier), "code_challenge_method": "S256"}
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    async def sign_in(self, http: httpx.AsyncClient, trip: RoundTrip, code: str) -> SignedIn:
        """The code exchanged for tokens, both checked."""
        endpoint = (await self.configuration(http))["token_endpoint"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.redirect_uri,
                "code_verifier": trip.verifier}
        secret = self.settings.oidc_client_secret
        if secret is None:  # a public client names itself
            form["client_id"] = self.settings.oidc_client_id
            auth = None
        else:  # client_secret_basic, each part form-encoded first (RFC 6749, 2.3.1)
            auth = (quote(self.settings.oidc_client_id, safe=""), quote(secret.get_secret_value(), safe=""))
        try:
            answer = await http.post(endpoint, data=form, auth=auth, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise SignInFailed(502, "Identitetsudbyderen svarer ikke lige nu. Prøv igen om lidt.") from None
        try:
            tokens = answer.json() if answer.status_code == 200 else {}
        except ValueError:
            tokens = {}
        if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str) \
                or not isinstance(tokens.get("id_token"), str):
            raise SignInFailed(400, "Identitetsudbyderen ville ikke udstede en adgang for dette log ind "
                                    "(koden kan være brugt eller udløbet). Prøv at logge ind igen.")
        await run_in_threadpool(self._check_id_token, tokens["id_token"], trip.nonce)
        try:
            principal = await run_in_threadpool(self._access.principal, tokens["access_token"])
        except Problem:
            raise SignInFailed(502, "Identitetsudbyderens adgangsnøgle gælder ikke for Frisag (udsteder, modtager "
                                    "eller nøgle passer ikke til det, tjenesterne godtager). Kontakt driften.") from None
        return SignedIn(tokens["access_token"], principal)

    def _check_id_token(self, id_token: str, nonce: str) -> None:
        """Signed by the provider for Frisag's client, not expired, and made for this sign-in
        (its nonce): else SignInFailed."""
        try:
            key = self._id_token_keys.get_signing_key_from_jwt(id_token)
            claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=self.settings.oidc_client_id,
                                issuer=self.issuer, leeway=LEEWAY,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]})
        except jwt.PyJWTError:
            raise SignInFailed(400, "Identitetsudbyderens svar kunne ikke bekræftes (id-token). "
                                    "Prøv at logge ind igen.") from None
        if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
            raise SignInFailed(400, "Identitetsudbyderens svar hørte ikke til dette log ind (id-tokenets nonce). "
                                    "Prøv at logge ind igen.")

    async def sign_out_url(self, http: httpx.AsyncClient) -> str | None:
        """The provider's end-session endpoint (RP-Initiated Logout), which sends the user back to
        the signed-out page; None when it has none (or does not answer)."""
        try:
            endpoint = (await self.configuration(http)).get("end_session_endpoint")
        except SignInFailed:
            return None
        if not endpoint:
            return None
        query = {"client_id": self.settings.oidc_client_id,
                 "post_logout_redirect_uri": f"{self.settings.web_base_url}/logget-ud"}
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"
