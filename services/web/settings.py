"""The web service's settings: environment variables of the same name in upper case.

It keeps no store, so it does not take the APIs' `ServiceSettings` (whose production check asks
for a database and a broker); it shares their names for what it has in common with them: the
development signing key under DATA_DIR/auth, the issuer and audience its development tokens
carry, and AUTH_JWKS_URL, whose presence means production keys (no development sign-in)."""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


MIN_SESSION_KEY = 32  # characters: a guessable key would let anyone forge a session


class WebSettings(BaseSettings):
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
    # signs the session cookie; unset in development, a new one each start (signing everyone out)
    session_key: SecretStr | None = None
    session_hours: int = 8

    @model_validator(mode="after")
    def _production_needs_a_session_key(self) -> "WebSettings":
        if self.session_key is not None and not self.session_key.get_secret_value():
            self.session_key = None  # set but empty (compose's default): unset
        if self.environment == "production" and (self.session_key is None
                                                 or len(self.session_key.get_secret_value()) < MIN_SESSION_KEY):
            raise ValueError(f"SESSION_KEY: production needs a fixed key of {MIN_SESSION_KEY} characters or more to "
                             "sign sessions with, shared by the replicas")
        return self

    @property
    def development_sign_in(self) -> bool:
        """Development keys are in use: the web service may mint tokens itself."""
        return not self.auth_jwks_url and self.environment == "development"  # empty: unset, as the APIs read it
