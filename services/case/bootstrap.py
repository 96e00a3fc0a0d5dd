"""Wires the case service from its settings: store, ingest, and the relay that publishes the store's
log to the stream (Kafka, or the embedded table)."""

import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import create_engine

from services.case.cases import Cases
from services.case.erasure import sweep
from services.case.ingest import Ingest
from services.case.relay import Relay, published
from services.case.settings import CaseSettings
from shared import tracing
from shared.audit import AuditLog
from shared.auth import Authenticator, authenticator
from shared.catalog import Catalog
from shared.settings import sqlalchemy_url
from shared.stream.connect import publisher_factory

RELAY_LOCK_ID = 0x46524953  # "FRIS": the PostgreSQL advisory lock that elects one relay
SCHEMA_LOCK_ID = 0x46534348  # "FSCH": held while a case service or relay makes the event store's tables
log = logging.getLogger(__name__)


@dataclass
class CaseService:
    cases: Cases
    ingest: Ingest
    authenticator: Authenticator
    audit: AuditLog
    relay: Relay | None = None  # None: the relay runs as its own process
    published: Callable[[], int] | None = None  # how far the relay has published, wherever it runs
    retention_days: int = 0  # erase cases this long after they closed; 0: keep them
    retention_sweep_seconds: float = 3600
    _stop: threading.Event = field(default_factory=threading.Event)
    _relay_thread: threading.Thread | None = None

    def start(self) -> "CaseService":
        if self.relay is not None:
            self._relay_thread = threading.Thread(target=self.relay.run, args=(self._stop,), name="relay", daemon=True)
            self._relay_thread.start()
        threading.Thread(target=self._sweep, name="erasure sweep", daemon=True).start()
        return self

    def _sweep(self) -> None:
        """Now and every `retention_sweep_seconds`: finish erasures that were cut off, and erase
        the cases whose retention has run out."""
        while True:
            try:
                erased = sweep(self.cases, self.retention_days, date.today())
                if erased:
                    log.info("erasure sweep: erased %d cases (retention %d days after close)", erased,
                             self.retention_days)
            except Exception:
                log.exception("erasure sweep failed; trying again at the next sweep")
            if self._stop.wait(self.retention_sweep_seconds):
                return

    def readiness(self) -> dict[str, str]:
        try:
            self.cases.last_position()
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
            return {"database": f"unreachable: {type(exc).__name__}"}
        return {}

    def metrics(self) -> list[Metric]:
        stored = self.cases.last_position()
        families = [CounterMetricFamily("frisag_events_stored_total",
                                        "Events in the case store (its log's last position)", value=stored)]
        if self.published is not None:
            published = self.published()
            families += [CounterMetricFamily("frisag_events_published_total",
                                             "Events the relay has published to the stream", value=published),
                         GaugeMetricFamily("frisag_relay_lag", "Stored events not yet published",
                                           value=stored - published)]
        return families

    def close(self) -> None:
        self.ingest.close()
        self._stop.set()
        if self._relay_thread is not None:
            self.relay.wake.set()
            self._relay_thread.join(timeout=10)
            self.relay.close()
        self.cases.close()
        self.audit.engine.dispose()


def bootstrap(settings: CaseSettings) -> CaseService:
    tracing.configure(settings, "frisag-case")
    cases = build_cases(settings)
    backfilled = cases.backfill_event_keys()  # once, for a store from before keys were checked across cases
    if backfilled:
        log.info("event keys: read the %d events stored before keys were checked across cases", backfilled)
    relay = build_relay(settings, cases) if settings.run_relay else None
    ingest = Ingest(cases, on_stored=relay.wake.set if relay else lambda: None)
    audit = AuditLog(create_engine(sqlalchemy_url(settings, "audit.sqlite"), pool_pre_ping=True), "case")
    recorder, topic = cases.factory.tracking_recorder(), settings.kafka_topic
    position = lambda: published(recorder, topic)  # noqa: E731
    return CaseService(cases, ingest, authenticator(settings), audit, relay, position,
                       settings.retention_after_close_days, settings.retention_sweep_seconds).start()


def build_cases(settings: CaseSettings, catalog: Catalog | None = None) -> Cases:
    """The event store, its tables made (the relay's tracking table too) while no other process
    makes them: PostgreSQL's CREATE TABLE IF NOT EXISTS fails when two run at once."""
    with _schema_lock(settings.database_url):
        cases = Cases(settings.eventsourcing_env("case.sqlite"),
                      create_engine(sqlalchemy_url(settings, "case_keys.sqlite"), pool_pre_ping=True),
                      settings.pseudonym_key.get_secret_value().encode(), catalog)
        cases.factory.tracking_recorder()
    return cases


@contextmanager
def _schema_lock(database_url: str | None) -> Iterator[None]:
    if database_url is None:  # SQLite: one process writes the file's schema at a time anyway
        yield
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))


def build_relay(settings: CaseSettings, cases: Cases) -> Relay:
    connect, empty_stream = publisher_factory(settings)
    leadership = _advisory_lock(settings.database_url) if settings.database_url else _file_lock(settings.data_dir)
    return Relay(cases, connect, settings.relay_batch_size, leadership, empty_stream)


def _file_lock(data_dir: Path):
    """Embedded, one relay publishes (the case service's, or a `run_relay` started beside it): an
    exclusive lock on a file next to the stores, which the system releases when the process dies."""
    @contextmanager
    def leadership() -> Iterator[bool]:
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(data_dir / "relay.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    return leadership


def _advisory_lock(database_url: str):
    @contextmanager
    def leadership() -> Iterator[bool]:
        # Held for as long as the connection lives: a relay that dies releases it.
        with psycopg.connect(database_url, autocommit=True) as conn:
            yield conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_ID,)).fetchone()[0]

    return leadership
