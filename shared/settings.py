"""Configuration common to the services, from the environment (pydantic-settings).

With nothing set, everything runs embedded: SQLite files under DATA_DIR, and the stream a table
the relay appends to (`shared.stream.embedded`). DATABASE_URL switches the stores to PostgreSQL,
KAFKA_BOOTSTRAP_SERVERS the stream to Kafka.

The keys that read a citizen (CASE_STORE_KEY, PSEUDONYM_KEY) are the case service's alone
(`services.case.settings.CaseSettings`); the consumers refuse to start when given them
(`ConsumerSettings`).
"""

import base64
from pathlib import Path
from typing import Literal

from pydantic import PositiveFloat, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PSEUDONYM_KEY = "development-only-pseudonym-key"
DEV_CASE_STORE_KEY = base64.b64encode(b"development-only-case-store-key!").decode()


class TokenClaimSettings(BaseSettings):
    """Where an access token's audience, roles and municipalities are read (`shared.auth.ClaimMapping`):
    the APIs' and the web service's alike. Keycloak's defaults work as they are."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # Frisag's client at the identity provider: its client roles (`resource_access.<id>.roles`) count
    auth_client_id: str = "frisag"
    # a token issued to that client (`azp`) is for Frisag though `aud` names only others (Keycloak's `account`)
    auth_accept_azp: bool = True
    # realm roles (`realm_access.roles`) count; false in a realm shared with applications whose roles they are
    auth_realm_roles: bool = True
    # the claim (a user attribute's mapper) holding the kommunekoder, one or a list
    auth_municipalities_claim: str = "municipalities"


class ServiceSettings(TokenClaimSettings):
    """Every option is an environment variable of the same name in upper case; the README's
    configuration table lists them all."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # production refuses development secrets and the embedded stores
    environment: Literal["development", "production"] = "development"
    database_url: str | None = None
    data_dir: Path = Path("var")
    kafka_bootstrap_servers: str | None = None
    kafka_topic: str = "frisag.case-events"
    kafka_topic_partitions: int = 6
    # how soon the group notices a consumer is gone; a join also takes about half of it
    kafka_session_timeout_ms: int = 10000
    # without Kafka: the embedded stream's database (SQLAlchemy URL); unset, DATABASE_URL's, or
    # the SQLite file DATA_DIR/stream.sqlite
    stream_url: str | None = None
    # traces go to this OTLP/HTTP endpoint (e.g. http://otel-collector:4318); none when unset
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str | None = None  # defaults to the service's own name
    # /readyz fails while a consumer is further behind than this many events
    ready_max_lag: int = 10000
    # bearer tokens: the issuer's keys (JWKS); unset, a development key under DATA_DIR/auth
    auth_jwks_url: str | None = None
    auth_issuer: str = "frisag-development"
    auth_audience: str = "frisag"
    max_body_bytes: int = 10 * 1024 * 1024  # larger request bodies are refused (413)
    # a request not answered within this many seconds is answered 503
    request_timeout_seconds: PositiveFloat = 30.0
    # origins (comma-separated) whose browser pages may call the service; none when empty
    cors_origins: str = ""

    @model_validator(mode="after")
    def _production_needs_real_parts(self) -> "ServiceSettings":
        if self.environment == "production":
            if not self.database_url or not self.kafka_bootstrap_servers:
                raise ValueError("production needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (no embedded stores)")
            if not self.auth_jwks_url:
                raise ValueError("AUTH_JWKS_URL: production needs the identity provider's keys, "
                                 "not the development signing key")
        return self

    def embedded_stream_url(self) -> str:
        return self.stream_url or sqlalchemy_url(self, "stream.sqlite")


class ConsumerSettings(ServiceSettings):
    """A consumer of the stream (obligations, reporting) reads pseudonymised events only: given a
    key that reads a citizen, it refuses to start rather than hold it."""

    # declared only to be refused (with `extra="ignore"` they would pass unnoticed)
    case_store_key: SecretStr | None = None
    pseudonym_key: SecretStr | None = None

    @model_validator(mode="after")
    def _holds_no_citizen_key(self) -> "ConsumerSettings":
        given = [name.upper() for name in ("case_store_key", "pseudonym_key") if getattr(self, name) is not None]
        if given:
            raise ValueError(f"{' and '.join(given)}: only the case service and its relay hold "
                             f"{'these keys' if len(given) > 1 else 'this key'}; remove it from this service's "
                             "environment")
        return self


def sqlalchemy_url(settings: ServiceSettings, sqlite_file: str) -> str:
    """The SQLAlchemy URL of a service's own store (projection tables). Its engines are made with
    `pool_pre_ping`: after a database restart a pooled connection is replaced, not failed on."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{settings.data_dir / sqlite_file}"
    scheme, rest = settings.database_url.split("://", 1)
    return f"postgresql+psycopg://{rest}"
