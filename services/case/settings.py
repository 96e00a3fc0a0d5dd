import base64
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator

from shared.settings import DEV_CASE_STORE_KEY, DEV_PSEUDONYM_KEY, ServiceSettings


class CaseSettings(ServiceSettings):
    """The case service and its relay: the only processes that hold the keys reading a citizen."""

    pseudonym_key: SecretStr = SecretStr(DEV_PSEUDONYM_KEY)
    # AES-GCM key (base64 of 16, 24 or 32 bytes) of the case store's events at rest, CPR
    # numbers included: `python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`
    case_store_key: SecretStr = SecretStr(DEV_CASE_STORE_KEY)
    relay_batch_size: int = 5000
    # Each case-service process runs a relay; an advisory lock lets one publish at a time.
    # Set false to run the relay only as its own process (`python -m services.case.run_relay`).
    run_relay: bool = True
    max_batch_events: int = 5000  # a larger batch is refused (413)
    # erase a case (crypto-shredding) this many days after it was closed; 0 keeps cases for
    # ever, which only development allows: set it from the municipality's retention rules
    retention_after_close_days: int = Field(default=0, ge=0)
    retention_sweep_seconds: float = Field(default=3600, gt=0)  # how often to look for such cases

    @model_validator(mode="after")
    def _production_erases(self) -> "CaseSettings":
        if self.environment == "production":
            if self.pseudonym_key.get_secret_value() in (DEV_PSEUDONYM_KEY, "") or len(self.pseudonym_key) < 32:
                raise ValueError("PSEUDONYM_KEY: production needs a secret key of at least 32 characters, "
                                 "not the development default")
            if self.case_store_key.get_secret_value() == DEV_CASE_STORE_KEY:
                raise ValueError("CASE_STORE_KEY: production needs a secret key, not the development default")
            if not self.retention_after_close_days:
                raise ValueError("RETENTION_AFTER_CLOSE_DAYS: production needs a retention period after case close")
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
