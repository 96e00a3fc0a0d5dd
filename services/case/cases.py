"""The case application: the store of cases (the unit of persistence), its key mapper (each
case's events encrypted under the case's own data key, `services.case.keys`) and the cache of
open cases. Reads (`history`), the stream (`stream_events`), erasure (`erasure`) and the
ingest that writes submissions (`ingest`) each have a module of their own over it.

An event's (source, id) is checked across all cases (`services.case.event_keys`).
"""

from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.persistence import Mapper
from sqlalchemy import Engine

from services.case import event_keys
from services.case.domain import Case, CaseErased
from services.case.keys import ERASED_TOPIC, CaseMapper, DataKeyErased, DataKeys
from shared.catalog import Catalog

MAX_ATTEMPTS = 50  # per write, when other writers keep changing its cases


class ConcurrentWrites(Exception):
    """Other writers kept changing the case: this write gave up after MAX_ATTEMPTS."""


class Cases(Application[UUID]):
    name = "cases"
    # Without fast-forward a cached case can be stale when several replicas write; the
    # version check on save catches that, and `Ingest` evicts and retries.
    env = {"AGGREGATE_CACHE_MAXSIZE": "50000", "AGGREGATE_CACHE_FASTFORWARD": "n"}

    def __init__(self, env: dict[str, str], keys_engine: Engine, pseudonym_key: bytes = b"",
                 catalog: Catalog | None = None) -> None:
        self.keys_engine = keys_engine  # before the library builds the mapper, which needs it
        recorder = event_keys.RECORDERS[env["PERSISTENCE_MODULE"]]  # one that stores the event keys too
        super().__init__({**env, "APPLICATION_RECORDER_TOPIC": f"{recorder.__module__}:{recorder.__qualname__}"})
        self.pseudonym_key = pseudonym_key
        self.catalog = catalog or Catalog.load()

    def construct_mapper(self) -> Mapper[UUID]:
        # the library's cipher (CIPHER_KEY, the store key) wraps each case's own data key
        self.keys = DataKeys(self.keys_engine, self.factory.cipher())
        return CaseMapper(self.construct_transcoder(), self.keys, self.factory.compressor())

    def save(self, *cases: Case, **kwargs: Any) -> list:
        self.keys.prepare(cases)
        keys = [(e.envelope["source"], e.envelope["id"], case.id) for case in cases for e in case.pending_events]
        recordings = super().save(*cases, event_keys=keys, **kwargs)
        # the cache keeps open cases: closed ones pile up, with their whole history, and nothing
        # but an erasure follows (a repeat of one of their events reads them from the store)
        self.forget({case.case_id for case in cases if case.closed_on is not None or case.erased_on is not None})
        return recordings

    def key_owners(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], UUID]:
        """The case (its uuid) each of these idempotency keys was stored in, for those stored."""
        return self.recorder.key_owners(keys) if keys else {}

    def backfill_event_keys(self, page: int = 1000) -> int:
        """Once, for a store written before keys were checked across cases: the key of every
        stored event it can still read (an erased case's events cannot be read, nor posted to).
        Returns how many events it read."""
        if self.recorder.key_owners([event_keys.BACKFILLED[:2]]):
            return 0
        after, count = 0, 0
        while notifications := self.recorder.select_notifications(start=after, limit=page, inclusive_of_start=False):
            self.keys.load(n.originator_id for n in notifications if n.topic != ERASED_TOPIC)
            rows = []
            for n in notifications:
                try:
                    envelope = self.mapper.to_domain_event(n).envelope
                except DataKeyErased:
                    continue
                rows.append((envelope["source"], envelope["id"], n.originator_id))
            self.recorder.add_keys(rows)
            after, count = notifications[-1].id, count + len(notifications)
        self.recorder.add_keys([event_keys.BACKFILLED])
        return count

    def get_case(self, case_id: str) -> Case | None:
        """The cached case itself, not a copy (copying each request's case costs more than the
        rest of its work): whoever changes it and does not save it must `forget` it. None for no
        such case; CaseErased for an erased one."""
        try:
            return self.repository.get(Case.create_id(case_id), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None
        except DataKeyErased:
            raise CaseErased(case_id) from None

    def stored(self, case_uuid: UUID) -> Case | None:
        """The case as stored: not the cached one, which the ingest thread changes in place."""
        events = list(self.repository.event_store.get(case_uuid))
        return project_aggregate(None, events) if events else None

    def unknown(self, case_ids: set[str]) -> set[str]:
        """Those of these cases that certainly have no stored events (no data key), found with
        one query: the store need not be asked for each (the first event of a case is stored
        after its key)."""
        uuids = {Case.create_id(case_id): case_id for case_id in case_ids}
        known = self.keys.load(uuids)
        return {case_id for case_uuid, case_id in uuids.items() if case_uuid not in known}

    def municipality(self, case_id: str) -> str | None:
        """The municipality responsible for the case now; None for no such case."""
        case = self.get_case(case_id)
        return case.municipality if case else None

    def forget(self, case_ids: set[str]) -> None:
        """Drop cached copies of cases that another writer may have changed."""
        if self.repository.cache is not None:
            for case_id in case_ids:
                try:
                    self.repository.cache.get(Case.create_id(case_id), evict=True)
                except KeyError:
                    pass

    def last_position(self) -> int:
        """The log position of the last stored event (0 when none)."""
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        super().close()
        self.keys_engine.dispose()
