from pathlib import Path

from shared.catalog import CATALOG_DIR
from shared.settings import ConsumerSettings


class ObligationsSettings(ConsumerSettings):
    catalog_dir: Path = CATALOG_DIR
    consumer_group: str = "obligations"
    run_consumer: bool = True
    consumer_batch_size: int = 5000  # deliveries stored per transaction
    # processes that re-fold cases; None: one per core on PostgreSQL, none on SQLite
    refold_workers: int | None = None
