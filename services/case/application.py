"""The case application (the unit of persistence for cases) and the ingest that feeds it.

Concurrent requests are committed together (group commit): the library's PostgreSQL recorder
takes a table lock per transaction to keep the notification log gap-free, so a transaction per
request would serialise on that lock. `Ingest` has one writer thread that takes every
submission waiting, checks each against the cases it touches, and saves all the accepted ones
in one transaction. A submission (one event or a batch) is all-or-nothing.
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
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from services.case.domain import Case
from shared import cpr as cpr_numbers
from shared.catalog import Catalog
from shared.events import IncomingEvent, StreamEvent
from shared.problems import Problem

log = logging.getLogger(__name__)


class Cases(Application[UUID]):
    name = "cases"
    # Without fast-forward a cached case can be stale when several replicas write; the
    # version check on save catches that, and `Ingest` evicts and retries.
    env = {"AGGREGATE_CACHE_MAXSIZE": "50000", "AGGREGATE_CACHE_FASTFORWARD": "n"}

    def __init__(self, env: dict[str, str] | None = None, pseudonym_key: bytes = b"",
                 catalog: Catalog | None = None) -> None:
        super().__init__(env)
        self.pseudonym_key = pseudonym_key
        self.catalog = catalog or Catalog.load()

    def get_case(self, case_id: str) -> Case | None:
        """The cached case itself, not a copy (copying each request's case costs more than the
        rest of its work): whoever changes it and does not save it must `forget` it."""
        try:
            return self.repository.get(Case.create_id(case_id), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

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
        events = list(self.repository.event_store.get(Case.create_id(case_id)))
        if not events:
            return None
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
        """Stored events after a log position, as consumers see them: CPR pseudonymised."""
        notifications = self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [self._stream_event(self.mapper.to_domain_event(n), n.id) for n in notifications]

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

    def submit(self, events: list[IncomingEvent]) -> "Future[list[Outcome]]":
        """Queue a submission to be stored all-or-nothing. The future holds its outcomes, or
        the Problem that refused it."""
        future: Future = Future()
        self._queue.put(_Submission(events, future))
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
        accepted: list[tuple[_Submission, list[Outcome | IncomingEvent]]] = []
        for submission in group:
            try:
                accepted.append((submission, self._check(submission.events, working)))
            except Problem as problem:
                submission.future.set_exception(problem)
        if not accepted:
            return
        try:
            recordings = self.cases.save(*working.values())
        except IntegrityError:
            # Another writer changed one of these cases: redo each submission on its own.
            self.cases.forget(set(working))
            for submission, _ in accepted:
                self._commit_alone(submission)
            return
        self._resolve(accepted, recordings)

    def _commit_alone(self, submission: _Submission) -> None:
        for attempt in range(self.MAX_ATTEMPTS):
            working: dict[str, Case] = {}
            try:
                planned = self._check(submission.events, working)
                recordings = self.cases.save(*working.values())
            except Problem as problem:
                submission.future.set_exception(problem)
                return
            except IntegrityError:
                self.cases.forget(set(working))
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # let the other writer through
                continue
            self._resolve([(submission, planned)], recordings)
            return
        submission.future.set_exception(
            Problem(409, "concurrent-writes", "The case keeps changing; try again", "too many concurrent writers"))

    def _check(self, events: list[IncomingEvent], working: dict[str, Case]) -> list[Outcome | IncomingEvent]:
        """Apply a submission to its cases; on success they join `working`, on refusal the ones
        it changed are forgotten. Returns, per event, an Outcome for a duplicate or the event
        itself (stored on save)."""
        touched: dict[str, Case] = {}
        planned: list[Outcome | IncomingEvent] = []
        for index, event in enumerate(events):
            case = touched.get(event.case_id)
            if case is None:
                case = copy.deepcopy(working[event.case_id]) if event.case_id in working else self.cases.get_case(event.case_id)
            try:
                if case is None:
                    case = Case.open(event)
                elif (sequence := case.sequence_of(event)) is not None:
                    planned.append(Outcome(event, sequence, None, duplicate=True))
                    continue
                else:
                    case.append(event, self.cases.catalog)
            except Problem as problem:
                self.cases.forget(set(touched))
                raise (problem.prefixed(f"[{index}]") if len(events) > 1 else problem) from None
            touched[event.case_id] = case
            planned.append(event)
        working.update(touched)
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
