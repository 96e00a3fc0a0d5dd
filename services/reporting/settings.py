from pathlib import Path

from shared.catalog import CATALOG_DIR
from shared.settings import ConsumerSettings


class ReportingSettings(ConsumerSettings):
    catalog_dir: Path = CATALOG_DIR
    reporting_group: str = "reporting"
    run_consumer: bool = True
    consumer_batch_size: int = 5000
    refold_workers: int | None = None  # as for the obligations service
    what_if_wait: float = 2.5  # seconds POST /what-if waits for the answer before answering 202 with the job
