"""Wires the reporting service: its store of facts, the catalog, the stream consumer."""

from dataclasses import dataclass

from sqlalchemy import create_engine

from services.consuming import ConsumingService, consuming
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from shared.catalog import Catalog
from shared.settings import sqlalchemy_url


@dataclass
class ReportingService(ConsumingService):
    projection: ReportingStore


def bootstrap(settings: ReportingSettings) -> ReportingService:
    engine = create_engine(sqlalchemy_url(settings, "reporting.sqlite"))
    store = ReportingStore(engine, Catalog.load(settings.catalog_dir), settings.reporting_group)
    return consuming(ReportingService, store, settings, run=settings.run_consumer, group=settings.reporting_group,
                     batch_size=settings.consumer_batch_size, workers=settings.refold_workers)
