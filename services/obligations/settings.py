from pathlib import Path

from pydantic import NonNegativeFloat, PositiveFloat

from shared.catalog import CATALOG_DIR
from shared.settings import ConsumerSettings


class ObligationsSettings(ConsumerSettings):
    catalog_dir: Path = CATALOG_DIR
    consumer_group: str = "obligations"
    run_consumer: bool = True
    consumer_batch_size: int = 5000  # deliveries stored per transaction
    # processes that re-fold cases; None: one per core on PostgreSQL, none on SQLite
    refold_workers: int | None = None
    # GET /obligations/changes: how often it looks for changes, sends a comment to keep the
    # connection open, and how long one stream lasts (the client reconnects with Last-Event-ID;
    # a shutdown waits for open streams at most this long)
    changes_poll_seconds: PositiveFloat = 1.0
    changes_heartbeat_seconds: PositiveFloat = 15.0
    changes_stream_seconds: NonNegativeFloat = 60.0
