"""Wires the reporting service: its store of facts, the catalog, the stream consumer."""

import ctypes
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from threading import Lock
from typing import Any

from sqlalchemy import Engine, create_engine

from services.consuming import ConsumingService, consuming
from services.reporting.facts import FactParts
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from services.reporting.whatif import WhatIfs
from shared import tracing
from shared.catalog import Catalog
from shared.settings import sqlalchemy_url

log = logging.getLogger(__name__)
SNAPSHOT_EVERY = 300.0  # seconds between writing the facts to the snapshot, when they changed
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's `mallopt` parameters (malloc.h)
MAPPED_FROM = 128 * 1024  # bytes: glibc's default thresholds, kept fixed (`map_columns`)


@dataclass
class ReportingService(ConsumingService):
    projection: ReportingStore
    _facts: FactParts = field(default_factory=FactParts)
    # the store's clock, and the answers computed (or being computed) then
    _answers: tuple[tuple[int, int] | None, dict[tuple, Future]] = field(default_factory=lambda: (None, {}))
    _lock: Lock = field(default_factory=Lock)
    snapshot: Path | None = None  # where the facts are kept between runs (`FactParts.save`); None: not kept
    _saved: tuple[int | None, int] = (None, 0)  # the clock of the facts last saved or read
    _saving: Lock = field(default_factory=Lock)
    _facts_read: threading.Event = field(default_factory=threading.Event)  # at start (`_keep_facts`)
    _keeper: threading.Thread | None = None

    def start(self) -> "ReportingService":
        super().start()
        self._keeper = threading.Thread(target=self._keep_facts, name="reporting-facts", daemon=True)
        self._keeper.start()
        return self

    def _keep_facts(self) -> None:
        """Read the facts at once, from the snapshot and then the cases derived since (else from
        the database), so that the first question finds them; then save them now and then."""
        try:
            with self._lock:
                read = FactParts.read(self.snapshot, self._database) if self.snapshot else None
                if read is not None:
                    self._saved = (read.tick, read.epoch)
                self._facts = (read or self._facts).refreshed(self.projection.engine)
        except Exception:  # the database not reachable yet: the first question reads them
            log.exception("could not read the facts at start")
        finally:
            self._facts_read.set()
        while not self._stop.is_set():
            self.save_facts()
            self._stop.wait(SNAPSHOT_EVERY)

    def readiness(self) -> dict[str, str]:
        """Not ready while the facts are read at start: the first questions would wait for them,
        and a scenario asked meanwhile would share the processor with the reading."""
        failing = super().readiness()
        if not failing and not self._facts_read.is_set():
            failing = {"facts": "being read into memory"}
        return failing

    @property
    def _database(self) -> str:
        return self.projection.engine.url.render_as_string(hide_password=True)

    def save_facts(self) -> None:
        """Write the facts to the snapshot if they changed since last written."""
        with self._saving:
            facts = self._facts
            if self.snapshot is None or facts.tick is None or (facts.tick, facts.epoch) == self._saved:
                return
            try:
                self.snapshot.parent.mkdir(parents=True, exist_ok=True)
                facts.save(self.snapshot, self._database)
                self._saved = (facts.tick, facts.epoch)
            except OSError:  # a cache: the service goes on without it
                log.exception("could not write the facts' snapshot to %s", self.snapshot)

    def cached(self, key: tuple, compute: Callable[[FactParts], Any]) -> Any:
        """`compute(facts)` over the facts as the store has them now, remembered until cases are
        derived again; the facts are kept in memory and only changed cases read again. Requests
        asking the same while it is computed wait for that answer."""
        with self._lock:
            facts = self._facts = self._facts.refreshed(self.projection.engine)
            if self._answers[0] != (facts.tick, facts.epoch):
                self._answers = ((facts.tick, facts.epoch), {})
            answers = self._answers[1]
            answer, mine = answers.get(key), key not in answers
            if mine:
                answer = answers[key] = Future()
        if mine:
            try:
                answer.set_result(compute(facts))
            except BaseException as exc:
                del answers[key]  # the next request tries again
                answer.set_exception(exc)
        return answer.result()

    @cached_property
    def what_ifs(self) -> WhatIfs:
        return WhatIfs(self.projection.engine, self.pool)

    def close(self) -> None:
        if "what_ifs" in self.__dict__:  # made at its first use
            self.what_ifs.close()
        super().close()
        if self._keeper is not None:  # stopped at once: after the facts are read, not before
            self._facts_read.wait()
        self.save_facts()  # the next start reads them


def map_columns() -> None:
    """Blocks of MAPPED_FROM bytes or more (the facts' columns and their copies) mapped, so that
    each goes back to the system when freed. glibc raises that threshold to the largest block
    freed (up to 32 MiB), and columns below it then come from heaps that keep what is freed
    between live blocks: a service whose parts keep changing grew by a quarter in 400 s (the
    soak at 100,000 cases). The free memory atop a heap goes back from the same size (glibc
    raises that threshold with the other, and imports have raised both by now). Another C
    library keeps its own policy."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform == "linux" else None
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MAPPED_FROM)
        mallopt(M_TRIM_THRESHOLD, MAPPED_FROM)


def projection_engine(settings: ReportingSettings) -> Engine:
    return create_engine(sqlalchemy_url(settings, "reporting.sqlite"), pool_pre_ping=True)


def bootstrap(settings: ReportingSettings) -> ReportingService:
    map_columns()
    tracing.configure(settings, "frisag-reporting")
    engine = projection_engine(settings)
    store = ReportingStore(engine, Catalog.load(settings.catalog_dir), settings.reporting_group)
    return consuming(ReportingService, store, settings, run=settings.run_consumer, group=settings.reporting_group,
                     batch_size=settings.consumer_batch_size, workers=settings.refold_workers,
                     snapshot=settings.data_dir / "reporting-facts.bin")
