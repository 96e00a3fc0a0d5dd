"""The case application (the unit of persistence for cases) and the ingest that feeds it.

Concurrent requests are committed together (group commit): the library's PostgreSQL recorder
takes a table lock per transaction to keep the notification log gap-free, so a transaction per
request would serialise on that lock. `Ingest` has one writer thread that takes every
submission waiting, checks each against the cases it touches, and saves all the accepted ones
in one transaction. A submission (one event or a batch) is all-or-nothing.

Before a submission's event says anything about an existing case (a duplicate and its sequence,
a conflict with the case's history), the caller must act for the case's municipality: otherwise
it hears 403, as when it reads the case. An event's (source, id) is checked across all cases
(`services.case.event_keys`).
"""

import copy
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.persistence import IntegrityError, Mapper
from sqlalchemy import Engine

from services.case import event_keys
from services.case.domain import Case, erased, key_used
from services.case.keys import ERASED_TOPIC, CaseErasedError, CaseMapper, DataKeys
from shared import cpr as cpr_numbers
from shared.catalog import Catalog
from shared.events import IncomingEvent, StreamEvent
from shared.problems import FieldError, Problem

log = logging.getLogger(__name__)


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
                except CaseErasedError:
                    continue
                rows.append((envelope["source"], envelope["id"], n.originator_id))
            self.recorder.add_keys(rows)
            after, count = notifications[-1].id, count + len(notifications)
        self.recorder.add_keys([event_keys.BACKFILLED])
        return count

    def get_case(self, case_id: str) -> Case | None:
        """The cached case itself, not a copy (copying each request's case costs more than the
        rest of its work): whoever changes it and does not save it must `forget` it. None for no
        such case; a 410 Problem for an erased one."""
        try:
            return self.repository.get(Case.create_id(case_id), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None
        except CaseErasedError:
            raise erased(case_id) from None

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

    def history(self, case_id: str) -> list[dict[str, Any]] | None:
        """The case's events as posted, in order, with the CPR number masked."""
        try:
            events = list(self.repository.event_store.get(Case.create_id(case_id)))
        except CaseErasedError:
            raise erased(case_id) from None
        if not events:
            return None
        if isinstance(events[-1], Case.Erased):  # its key is about to go
            raise erased(case_id)
        return [
            {
                "sequence": e.originator_version,
                "recorded": e.timestamp.isoformat(),
                "specversion": "1.0",
                **{k: v for k, v in e.envelope.items() if v is not None},
                "data": _masked(e.data),
            }
            for e in events
        ]

    def last_position(self) -> int:
        """The log position of the last stored event (0 when none)."""
        return self.recorder.max_notification_id() or 0

    def stream_events(self, after: int, limit: int) -> list[StreamEvent]:
        """Stored events after a log position, as consumers see them: CPR pseudonymised. An
        erased case's events are left out (they cannot be read); its erasure, later in the log,
        is not."""
        while notifications := self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False):
            self.keys.load(n.originator_id for n in notifications if n.topic != ERASED_TOPIC)
            events = []
            for n in notifications:
                try:
                    events.append(self._stream_event(self.mapper.to_domain_event(n), n.id))
                except CaseErasedError:
                    pass
            if events:
                return events
            after = notifications[-1].id
        return []

    def erase(self, case_id: str, reason: str, today: date) -> dict[str, Any] | None:
        """Erase a case: record its erasure (for the stream), then forget its data key. Once
        more for an erased case finishes an erasure that was cut off, and answers as before.
        None for no such case."""
        return self._erase(Case.create_id(case_id), reason, today)

    def sweep(self, retention_days: int, today: date) -> int:
        """Finish erasures that were cut off; with a retention period, erase every case closed
        more than `retention_days` before `today`; then scrub the erased keys from the key
        table's files (those erased since the last sweep, here or by another replica). Returns
        how many cases it erased."""
        count = self._erase_due(retention_days, today)
        self.keys.scrub()
        return count

    def _erase_due(self, retention_days: int, today: date) -> int:
        count = 0
        for case_uuid, reason in self.keys.unfinished():
            count += self._erase(case_uuid, reason, today) is not None
        if not retention_days:
            return count
        cutoff = today - timedelta(days=retention_days)
        for case_uuid in self.keys.closed_before(cutoff):
            try:
                case = self._stored(case_uuid)
            except CaseErasedError:
                continue
            # the date beside the key was written before the closing event: the case decides
            if case is not None and case.closed_on is not None and date.fromisoformat(case.closed_on) < cutoff:
                count += self._erase(case_uuid, "retention", today) is not None
        return count

    def _erase(self, case_uuid: UUID, reason: str, today: date) -> dict[str, Any] | None:
        for _ in range(Ingest.MAX_ATTEMPTS):
            erasure = self._erasure(case_uuid)
            if erasure is not None:
                self.keys.erase(case_uuid)
                self.forget({erasure["case_id"]})
                return erasure
            try:
                case = self._stored(case_uuid)
            except CaseErasedError:  # another caller erased it just now: its erasure is found next round
                continue
            if case is None:
                return None
            if case.erased_on is not None:  # erased between the two reads: as above
                continue
            self.keys.begin_erasure(case_uuid, reason)  # if this is cut off, the next sweep finishes it
            case.erase(today, reason)
            try:
                self.save(case)
            except IntegrityError:  # an event came in meanwhile: erase the case as it is now
                continue
        raise Problem(409, "concurrent-writes", "The case keeps changing; try again", "too many concurrent writers")

    def _stored(self, case_uuid: UUID) -> Case | None:
        """The case as stored: not the cached one, which the ingest thread changes in place."""
        events = list(self.repository.event_store.get(case_uuid))
        return project_aggregate(None, events) if events else None

    def close(self) -> None:
        super().close()
        self.keys_engine.dispose()

    def _erasure(self, case_uuid: UUID) -> dict[str, Any] | None:
        """The case's erasure, if it has one: always its last event."""
        last = self.recorder.select_events(case_uuid, desc=True, limit=1)
        if not last or last[0].topic != ERASED_TOPIC:
            return None
        stored = self.mapper.to_domain_event(last[0])
        return {"case_id": stored.envelope["subject"], "erased_on": stored.data["date"],
                "reason": stored.data["reason"], "sequence": stored.originator_version}

    def _stream_event(self, stored: Any, position: int) -> StreamEvent:
        data = stored.data
        if "cpr" in data:
            data = {k: v for k, v in data.items() if k != "cpr"}
            data["citizen"] = cpr_numbers.pseudonym(stored.data["cpr"], self.pseudonym_key)
        envelope = stored.envelope
        return StreamEvent(
            id=envelope["id"],
            source=envelope["source"],
            type=envelope["type"],
            subject=envelope["subject"],
            time=envelope["time"],
            data=data,
            sequence=stored.originator_version,
            position=position,
            permitted_by=envelope.get("permittedby"),
            traceparent=envelope.get("traceparent"),
        )


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    if "cpr" not in data:
        return data
    return {**data, "cpr": data["cpr"][:6] + "-****"}


@dataclass(frozen=True)
class Outcome:
    """What happened to one posted event."""

    event: IncomingEvent
    sequence: int  # its number within the case
    position: int | None  # its place in the store's log; None for a duplicate
    duplicate: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.event.id,
            "source": self.event.source,
            "subject": self.event.case_id,
            "status": "duplicate" if self.duplicate else "stored",
            "sequence": self.sequence,
            "position": self.position,
        }


@dataclass
class _Submission:
    events: list[IncomingEvent]
    future: Future
    acts_for: Callable[[str], bool]  # whether the caller acts for a municipality


class _StaleCase(Exception):
    """The store knows more of a case than its cached copy (another replica wrote it)."""


def _not_acting_for_case() -> Problem:
    # what reading the case answers: nothing about it (not even its municipality)
    return Problem(403, "forbidden", "Forbidden", errors=[FieldError(
        "subject", "the case belongs to a municipality this token does not act for")])


def _not_acting_for(event: IncomingEvent) -> Problem:
    return Problem(403, "forbidden", "Forbidden", errors=[FieldError(
        "subject", f"case {event.case_id} belongs to municipality {event.data['municipality']}, which this token "
                   "does not act for")])


class Ingest:
    """Stores submissions through one writer thread that commits whatever is waiting together."""

    MAX_GROUP = 500  # submissions per transaction
    MAX_ATTEMPTS = 50  # per submission, when other writers keep changing its cases

    def __init__(self, cases: Cases, on_stored: Callable[[], None] = lambda: None) -> None:
        self.cases = cases
        self.on_stored = on_stored
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def submit(self, events: list[IncomingEvent],
               acts_for: Callable[[str], bool] = lambda municipality: True) -> "Future[list[Outcome]]":
        """Queue a submission to be stored all-or-nothing, for a caller who acts for the
        municipalities `acts_for` accepts. The future holds its outcomes, or the Problem that
        refused it."""
        future: Future = Future()
        self._queue.put(_Submission(events, future, acts_for))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            try:
                self._commit(group)
            except Exception as exc:  # the store failed: every waiting request hears so
                log.exception("ingest failed")
                self.cases.forget({e.case_id for submission in group for e in submission.events})
                for submission in group:
                    if not submission.future.done():
                        submission.future.set_exception(
                            Problem(503, "store-unavailable", "The case store is unavailable", str(exc)))

    def _commit(self, group: list[_Submission]) -> None:
        working: dict[str, Case] = {}
        claimed: dict[tuple[str, str], UUID] = {}
        accepted: list[tuple[_Submission, list[Outcome | IncomingEvent]]] = []
        unknown = self.cases.unknown({e.case_id for submission in group for e in submission.events})
        owners = self.cases.key_owners({e.key for submission in group for e in submission.events})
        try:
            for submission in group:
                try:
                    accepted.append((submission, self._check(submission, working, owners, claimed, unknown)))
                except Problem as problem:
                    submission.future.set_exception(problem)
            if not accepted:
                return
            recordings = self.cases.save(*working.values())
        except (IntegrityError, CaseErasedError, _StaleCase):
            # Another writer changed (or erased) one of these cases: redo each submission on its own.
            self.cases.forget(set(working))
            for submission in group:
                if not submission.future.done():
                    self._commit_alone(submission)
            return
        self._resolve(accepted, recordings)

    def _commit_alone(self, submission: _Submission) -> None:
        for attempt in range(self.MAX_ATTEMPTS):
            working: dict[str, Case] = {}
            try:
                owners = self.cases.key_owners({e.key for e in submission.events})
                planned = self._check(submission, working, owners, {})
                recordings = self.cases.save(*working.values())
            except Problem as problem:
                submission.future.set_exception(problem)
                return
            except (IntegrityError, CaseErasedError, _StaleCase):
                self.cases.forget(set(working))
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # let the other writer through
                continue
            self._resolve([(submission, planned)], recordings)
            return
        submission.future.set_exception(
            Problem(409, "concurrent-writes", "The case keeps changing; try again", "too many concurrent writers"))

    def _check(self, submission: _Submission, working: dict[str, Case], owners: dict[tuple[str, str], UUID],
               claimed: dict[tuple[str, str], UUID],
               unknown: frozenset[str] | set[str] = frozenset()) -> list[Outcome | IncomingEvent]:
        """Apply a submission to its cases (`unknown`: cases known to have no events yet;
        `owners`: the cases stored keys belong to; `claimed`: keys taken earlier in this group);
        on success they join `working` and `claimed`, on refusal the ones it changed are
        forgotten. Returns, per event, an Outcome for a duplicate or the event itself (stored on
        save)."""
        events = submission.events
        touched: dict[str, Case] = {}
        taken: dict[tuple[str, str], UUID] = {}
        planned: list[Outcome | IncomingEvent] = []
        for index, event in enumerate(events):
            case = touched.get(event.case_id)
            if case is None:
                if event.case_id in working:
                    case = copy.deepcopy(working[event.case_id])
                else:
                    case = None if event.case_id in unknown else self.cases.get_case(event.case_id)
            try:
                if case is not None and not submission.acts_for(case.municipality):
                    raise _not_acting_for_case()
                if case is None and event.name == "case.opened" and not submission.acts_for(event.data["municipality"]):
                    raise _not_acting_for(event)
                if case is not None and (sequence := case.duplicate_of(event)) is not None:
                    planned.append(Outcome(event, sequence, None, duplicate=True))
                    continue
                owner = taken.get(event.key) or claimed.get(event.key) or owners.get(event.key)
                if owner is not None:
                    if owner != Case.create_id(event.case_id):
                        raise key_used(event)
                    raise _StaleCase(event.case_id)  # stored in this case, which does not know it
                if case is None:
                    case = Case.open(event)
                else:
                    case.append(event, self.cases.catalog)
            except Problem as problem:
                self.cases.forget(set(touched))
                raise (problem.prefixed(f"[{index}]") if len(events) > 1 else problem) from None
            except _StaleCase:
                self.cases.forget({*touched, event.case_id})
                raise
            touched[event.case_id] = case
            taken[event.key] = case.id
            planned.append(event)
        working.update(touched)
        claimed.update(taken)
        return planned

    def _resolve(self, accepted: list[tuple[_Submission, list[Outcome | IncomingEvent]]], recordings: list) -> None:
        positions = {
            (r.domain_event.envelope["source"], r.domain_event.envelope["id"]): (r.domain_event.originator_version, r.notification.id)
            for r in recordings
        }
        for submission, planned in accepted:
            outcomes = [
                item if isinstance(item, Outcome) else Outcome(item, *positions[item.key], duplicate=False)
                for item in planned
            ]
            submission.future.set_result(outcomes)
        if recordings:
            self.on_stored()
