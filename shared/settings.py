"""Configuration common to the services, from the environment (pydantic-settings).

With nothing set, everything runs embedded: SQLite files under DATA_DIR, and the stream read
straight from the case store's log. DATABASE_URL switches the stores to PostgreSQL,
KAFKA_BOOTSTRAP_SERVERS the stream to Kafka.
"""

import base64
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import PositiveFloat, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PSEUDONYM_KEY = "development-only-pseudonym-key"
DEV_CASE_STORE_KEY = base64.b64encode(b"development-only-case-store-key!").decode()


class ServiceSettings(BaseSettings):
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
    pseudonym_key: SecretStr = SecretStr(DEV_PSEUDONYM_KEY)
    # AES-GCM key (base64 of 16, 24 or 32 bytes) of the case store's events at rest, CPR
    # numbers included: `python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`
    case_store_key: SecretStr = SecretStr(DEV_CASE_STORE_KEY)
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
            if self.pseudonym_key.get_secret_value() in (DEV_PSEUDONYM_KEY, "") or len(self.pseudonym_key) < 32:
                raise ValueError("PSEUDONYM_KEY: production needs a secret key of at least 32 characters, "
                                 "not the development default")
            if not self.database_url or not self.kafka_bootstrap_servers:
                raise ValueError("production needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (no embedded stores)")
            if not self.auth_jwks_url:
                raise ValueError("AUTH_JWKS_URL: production needs the identity provider's keys, "
                                 "not the development signing key")
            if self.case_store_key.get_secret_value() == DEV_CASE_STORE_KEY:
                raise ValueError("CASE_STORE_KEY: production needs a secret key, not the development default")
        try:
            key_bytes = len(base64.b64decode(self.case_store_key.get_secret_value(), validate=True))
        except ValueError:
            key_bytes = 0
        if key_bytes not in (16, 24, 32):
            raise ValueError("CASE_STORE_KEY: base64 of a 16, 24 or 32 byte AES key")
        return self

    def eventsourcing_env(self, sqlite_file: str) -> dict[str, str]:
        """The `eventsourcing` library's persistence settings for this configuration: every
        stored event encrypted (AES-GCM) under CASE_STORE_KEY."""
        cipher = {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
                  "CIPHER_KEY": self.case_store_key.get_secret_value()}
        if not self.database_url:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.data_dir / sqlite_file),
                    **cipher}
        url = urlsplit(self.database_url)
        if url.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "localhost",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            # a pooled connection is checked before use: after a database restart the first
            # request on it would fail (a 5xx) instead of taking a new one
            "POSTGRES_PRE_PING": "y",
            **cipher,
        }


def sqlalchemy_url(settings: ServiceSettings, sqlite_file: str) -> str:
    """The SQLAlchemy URL of a service's own store (projection tables). Its engines are made with
    `pool_pre_ping`: after a database restart a pooled connection is replaced, not failed on."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{settings.data_dir / sqlite_file}"
    scheme, rest = settings.database_url.split("://", 1)
    return f"postgresql+psycopg://{rest}"
