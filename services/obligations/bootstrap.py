"""Wires the obligations service: projection store, catalog, stream consumer."""

import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import create_engine

from services.case.application import Cases
from services.case.bootstrap import open_stream
from services.obligations.consumer import Consumer
from services.obligations.projection import ObligationsProjection
from services.obligations.settings import ObligationsSettings
from shared.catalog import Catalog
from shared.settings import sqlalchemy_url


@dataclass
class ObligationsService:
    settings: ObligationsSettings
    projection: ObligationsProjection
    consumer: Consumer | None
    case_store: Cases | None = None
    pool: Executor | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "ObligationsService":
        if self.consumer is not None:
            self._thread = threading.Thread(target=self.consumer.run, args=(self._stop,), name="obligations-consumer", daemon=True)
            self._thread.start()
        return self

    def reload_catalog(self) -> int:
        """Load the catalog files again; mark the cases the change touches for re-evaluation."""
        old, new = self.projection.catalog, Catalog.load(self.settings.catalog_dir)
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

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        self.projection.engine.dispose()
        if self.case_store is not None:
            self.case_store.close()


def bootstrap(settings: ObligationsSettings) -> ObligationsService:
    engine = create_engine(sqlalchemy_url(settings, "obligations.sqlite"))
    projection = ObligationsProjection(engine, Catalog.load(settings.catalog_dir), settings.consumer_group)
    consumer, case_store, pool = None, None, None
    if settings.run_consumer:
        workers = settings.refold_workers
        if workers is None:
            workers = (os.cpu_count() or 1) if settings.database_url else 0
        if workers:
            # spawned, not forked: this process runs threads (consumer, server) a fork would copy mid-flight
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        stream, case_store = open_stream(settings)
        consumer = Consumer(projection, stream, settings.consumer_group, settings.consumer_batch_size, pool)
    return ObligationsService(settings, projection, consumer, case_store, pool).start()
