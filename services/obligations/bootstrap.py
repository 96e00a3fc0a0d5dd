"""Wires the obligations service: projection store, catalog, stream consumer."""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine

from services.consuming import ConsumingService, consuming
from services.obligations.projection import ObligationsProjection
from services.obligations.settings import ObligationsSettings
from shared import tracing
from shared.catalog import CATALOG_DIR, Catalog
from shared.settings import sqlalchemy_url


@dataclass
class ObligationsService(ConsumingService):
    projection: ObligationsProjection
    catalog_dir: Path = CATALOG_DIR

    def reload_catalog(self) -> int:
        """Load the catalog files again; mark the cases the change touches for re-evaluation."""
        old, new = self.projection.catalog, Catalog.load(self.catalog_dir)
        self.projection.catalog = new
        if old.rules != new.rules:
            return self.projection.mark_stale_in(None)
        touched = set()
        for trial_id in set(old.trials) | set(new.trials):
            before, after = old.trials.get(trial_id), new.trials.get(trial_id)
            if before != after:
                touched.update(before.municipalities if before else [])
                touched.update(after.municipalities if after else [])
        return self.projection.mark_stale_in(touched) if touched else 0


def projection_engine(settings: ObligationsSettings) -> Engine:
    return create_engine(sqlalchemy_url(settings, "obligations.sqlite"), pool_pre_ping=True)


def bootstrap(settings: ObligationsSettings) -> ObligationsService:
    tracing.configure(settings, "frisag-obligations")
    engine = projection_engine(settings)
    projection = ObligationsProjection(engine, Catalog.load(settings.catalog_dir), settings.consumer_group)
    return consuming(ObligationsService, projection, settings, run=settings.run_consumer,
                     group=settings.consumer_group, batch_size=settings.consumer_batch_size,
                     workers=settings.refold_workers, catalog_dir=settings.catalog_dir)
