"""Wires the reporting service: its store of facts, the catalog, the stream consumer."""

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from threading import Lock
from typing import Any

from sqlalchemy import Engine, create_engine

from services.consuming import ConsumingService, consuming
from services.reporting.facts import Facts
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from services.reporting.whatif import WhatIfs
from shared import tracing
from shared.catalog import Catalog
from shared.settings import sqlalchemy_url


@dataclass
class ReportingService(ConsumingService):
    projection: ReportingStore
    _facts: Facts = field(default_factory=Facts)
    # the store's clock, and the answers computed (or being computed) then
    _answers: tuple[tuple[int, int] | None, dict[tuple, Future]] = field(default_factory=lambda: (None, {}))
    _lock: Lock = field(default_factory=Lock)

    def cached(self, key: tuple, compute: Callable[[Facts], Any]) -> Any:
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


def projection_engine(settings: ReportingSettings) -> Engine:
    return create_engine(sqlalchemy_url(settings, "reporting.sqlite"), pool_pre_ping=True)


def bootstrap(settings: ReportingSettings) -> ReportingService:
    tracing.configure(settings, "frisag-reporting")
    engine = projection_engine(settings)
    store = ReportingStore(engine, Catalog.load(settings.catalog_dir), settings.reporting_group)
    return consuming(ReportingService, store, settings, run=settings.run_consumer, group=settings.reporting_group,
                     batch_size=settings.consumer_batch_size, workers=settings.refold_workers)
