"""The web service's settings: environment variables of the same name in upper case.

It keeps no store, so it does not take the APIs' `ServiceSettings` (whose production check asks
for a database and a broker); it shares their names for what it has in common with them: the
development signing key under DATA_DIR/auth, the issuer and audience its development tokens
carry, and AUTH_JWKS_URL, whose presence means production keys (no development sign-in).

With OIDC_CLIENT_ID it signs users in through the identity provider whose tokens the APIs accept:
OpenID Connect's authorization code flow with PKCE against AUTH_ISSUER (discovered at
`{AUTH_ISSUER}/.well-known/openid-configuration`), which sends them back to WEB_BASE_URL."""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import TokenClaimSettings


MIN_SESSION_KEY = 32  # characters: a guessable key would let anyone forge a session


class WebSettings(TokenClaimSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # the APIs the pages call with the signed-in user's token
    case_url: str = "http://127.0.0.1:8001"
    obligations_url: str = "http://127.0.0.1:8002"
    reporting_url: str = "http://127.0.0.1:8003"
    data_dir: Path = Path("var")
    auth_jwks_url: str | None = None
    auth_issuer: str = "frisag-development"
    auth_audience: str = "frisag"
    # encrypts the session cookie; unset in development, a new one each start (signing everyone out)
    session_key: SecretStr | None = None
    session_hours: int = 8
    # OpenID Connect: Frisag's client at the identity provider (a confidential client has a secret;
    # PKCE is used either way), and the address users reach the web service at
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    web_base_url: str | None = None

    @model_validator(mode="after")
    def _production_needs_a_session_key_and_the_identity_provider(self) -> "WebSettings":
        # set but empty (compose's default): unset
        if self.session_key is not None and not self.session_key.get_secret_value():
            self.session_key = None
        if self.oidc_client_secret is not None and not self.oidc_client_secret.get_secret_value():
            self.oidc_client_secret = None
        self.oidc_client_id = self.oidc_client_id or None
        self.web_base_url = (self.web_base_url or "").rstrip("/") or None  # the paths are added with their /
        if self.environment == "production" and (self.session_key is None
                                                 or len(self.session_key.get_secret_value()) < MIN_SESSION_KEY):
            raise ValueError(f"SESSION_KEY: production needs a fixed key of {MIN_SESSION_KEY} characters or more to "
                             "encrypt sessions with, shared by the replicas")
        if self.environment == "production" and not self.oidc_client_id:
            raise ValueError("OIDC_CLIENT_ID: production signs users in through the identity provider (AUTH_ISSUER) "
                             "with OpenID Connect: name Frisag's client there")
        if self.oidc_client_id:
            if not self.auth_jwks_url:  # the development key signs nothing the provider issues
                raise ValueError("AUTH_JWKS_URL: signing in through the identity provider needs the APIs' keys of it")
            if not self.auth_issuer.startswith(("https://", "http://")):
                raise ValueError("AUTH_ISSUER: signing in through the identity provider needs its issuer URL, "
                                 "where its OpenID configuration is found")
            if not self.web_base_url or not self.web_base_url.startswith(("https://", "http://")):
                raise ValueError("WEB_BASE_URL: signing in through the identity provider needs the address users "
                                 "reach the web pages at, e.g. https://frisag.example.dk")
        return self

    @property
    def development_sign_in(self) -> bool:
        """Development keys are in use: the web service may mint tokens itself (never with
        OIDC_CLIENT_ID, which needs AUTH_JWKS_URL)."""
        return not self.auth_jwks_url and self.environment == "development"  # empty: unset, as the APIs read it

    @property
    def redirect_uri(self) -> str:
        """Where the identity provider sends the user back with the authorization code."""
        return f"{self.web_base_url}/log-ind/retur"
