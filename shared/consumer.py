"""Feeds a projection (`shared.projection`) from the stream until stopped.

Two loops: one stores deliveries and derives the cases they changed, each batch in one
transaction; the other derives again the cases a catalog change made stale, in worker processes
when given a pool. A posted event is derived within a fraction of a second in normal load.
Several consumers in one consumer group (replicas, `services.run_consumer`) share the topic's
partitions, and so the work of a rebuild.
"""

import logging
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor

from opentelemetry import trace

from shared import tracing
from shared.projection import CaseProjection, collect_for_batches
from shared.stream import EventStream, Subscription

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("frisag.consumer")


class Consumer:
    IDLE_WAIT = 0.1  # seconds between looks for stale cases

    def __init__(self, projection: CaseProjection, stream: EventStream, group: str,
                 batch_size: int = 5000, pool: Executor | None = None) -> None:
        self.projection = projection
        self.stream = stream
        self.group = group
        self.batch_size = batch_size
        self.pool = pool
        self.subscription: Subscription | None = None  # while subscribed

    def run(self, stop: threading.Event) -> None:
        collect_for_batches()
        refresher = threading.Thread(target=self._keep_refolding, args=(stop,), name="refold", daemon=True)
        refresher.start()
        while not stop.is_set():
            try:
                self._consume(stop)
            except Exception:
                log.exception("consumer failed; restarting")
                stop.wait(1.0)
        refresher.join()

    def _consume(self, stop: threading.Event) -> None:
        subscription = self.stream.subscribe(self.group, self.projection.resume_from)
        self.subscription = subscription
        try:
            while not stop.is_set():
                deliveries = subscription.poll(timeout=0.2, max_records=self.batch_size)
                with tracing.processing(_tracer, self.stream.system, self.stream.topic, deliveries, self.group):
                    self.projection.store(deliveries)
        finally:
            self.subscription = None
            subscription.close()

    def _keep_refolding(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if not self.projection.refresh(pool=self.pool):
                    stop.wait(self.IDLE_WAIT)
            except Exception:
                log.exception("re-folding failed; retrying")
                stop.wait(1.0)


def worker_pool(workers: int | None, database_url: str | None) -> Executor | None:
    """Processes that derive cases: by default one per core on PostgreSQL, none on SQLite
    (one writer at a time there anyway)."""
    if workers is None:
        workers = (os.cpu_count() or 1) if database_url else 0
    if not workers:
        return None
    # spawned, not forked: the caller runs threads (consumer, server) a fork would copy mid-flight
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
