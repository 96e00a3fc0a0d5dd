"""Wires the reporting service: its store of facts, the catalog, the stream consumer."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine

from services.consuming import ConsumingService, consuming
from services.reporting.evaluation import Facts
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from shared import tracing
from shared.catalog import Catalog
from shared.settings import sqlalchemy_url


@dataclass
class ReportingService(ConsumingService):
    projection: ReportingStore
    _cache: dict = field(default_factory=dict)

    def cached(self, key: tuple, compute: Callable[[Facts], Any]) -> Any:
        """`compute(facts)`, remembered until the store changes: evaluating a large population
        takes seconds, and the store changes only as events arrive."""
        version = self.projection.version()
        if self._cache.get("version") != version:
            self._cache = {"version": version, "facts": Facts.load(self.projection.engine)}
        if key not in self._cache:
            self._cache[key] = compute(self._cache["facts"])
        return self._cache[key]


def projection_engine(settings: ReportingSettings) -> Engine:
    return create_engine(sqlalchemy_url(settings, "reporting.sqlite"))


def bootstrap(settings: ReportingSettings) -> ReportingService:
    tracing.configure(settings, "frisag-reporting")
    engine = projection_engine(settings)
    store = ReportingStore(engine, Catalog.load(settings.catalog_dir), settings.reporting_group)
    return consuming(ReportingService, store, settings, run=settings.run_consumer, group=settings.reporting_group,
                     batch_size=settings.consumer_batch_size, workers=settings.refold_workers)
