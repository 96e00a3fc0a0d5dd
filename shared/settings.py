"""Configuration common to the services, from the environment (pydantic-settings).

With nothing set, everything runs embedded: SQLite files under DATA_DIR, and the stream read
straight from the case store's log. DATABASE_URL switches the stores to PostgreSQL,
KAFKA_BOOTSTRAP_SERVERS the stream to Kafka.
"""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PSEUDONYM_KEY = "development-only-pseudonym-key"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str | None = None
    data_dir: Path = Path("var")
    kafka_bootstrap_servers: str | None = None
    kafka_topic: str = "frisag.case-events"
    kafka_topic_partitions: int = 6
    # how soon the group notices a consumer is gone; a join also takes about half of it
    kafka_session_timeout_ms: int = 10000
    pseudonym_key: SecretStr = SecretStr(DEV_PSEUDONYM_KEY)

    def eventsourcing_env(self, sqlite_file: str) -> dict[str, str]:
        """The `eventsourcing` library's persistence settings for this configuration."""
        if not self.database_url:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.data_dir / sqlite_file)}
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
        }


def sqlalchemy_url(settings: ServiceSettings, sqlite_file: str) -> str:
    """The SQLAlchemy URL of a service's own store (projection tables)."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{settings.data_dir / sqlite_file}"
    scheme, rest = settings.database_url.split("://", 1)
    return f"postgresql+psycopg://{rest}"
