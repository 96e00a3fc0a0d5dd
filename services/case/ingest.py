"""The ingest: stores posted events in the case application, committing concurrent requests
together (group commit).

The library's PostgreSQL recorder takes a table lock per transaction to keep the notification
log gap-free, so a transaction per request would serialise on that lock. `Ingest` has one writer
thread that takes every submission waiting, checks each against the cases it touches, and saves
all the accepted ones in one transaction. A submission (one event or a batch) is all-or-nothing.

Before a submission's event says anything about an existing case (a duplicate and its sequence,
a conflict with the case's history), the caller must act for the case's municipality: otherwise
it is refused (NotActingFor), as when it reads the case.
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

from eventsourcing.persistence import IntegrityError

from services.case.cases import MAX_ATTEMPTS, Cases, ConcurrentWrites
from services.case.domain import Case, EventIdUsed
from services.case.keys import DataKeyErased
from shared.events import IncomingEvent
from shared.refusals import Refusal

log = logging.getLogger(__name__)


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


@dataclass
class NotActingFor(Refusal):
    """The caller does not act for the municipality of the event's case."""

    field: str
    reason: str

    @classmethod
    def stored_case(cls) -> "NotActingFor":
        # what reading the case answers: nothing about it (not even its municipality)
        return cls("subject", "the case belongs to a municipality this token does not act for")

    @classmethod
    def new_case(cls, event: IncomingEvent) -> "NotActingFor":
        return cls("subject", f"case {event.case_id} belongs to municipality {event.data['municipality']}, which "
                              "this token does not act for")


@dataclass
class InBatch(Refusal):
    """A refusal of the event at `index` of a batch: the whole batch is refused."""

    index: int
    refusal: Refusal

    @property
    def field(self) -> str:
        return f"[{self.index}].{self.refusal.field}" if self.refusal.field else f"[{self.index}]"

    @property
    def reason(self) -> str:
        return self.refusal.reason


@dataclass
class StoreUnavailable(Exception):
    """The store failed while committing: nothing of the submission is known to be stored."""

    detail: str


class Ingest:
    """Stores submissions through one writer thread that commits whatever is waiting together."""

    MAX_GROUP = 500  # submissions per transaction

    def __init__(self, cases: Cases, on_stored: Callable[[], None] = lambda: None) -> None:
        self.cases = cases
        self.on_stored = on_stored
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def submit(self, events: list[IncomingEvent],
               acts_for: Callable[[str], bool] = lambda municipality: True) -> "Future[list[Outcome]]":
        """Queue a submission to be stored all-or-nothing, for a caller who acts for the
        municipalities `acts_for` accepts. The future holds its outcomes, or the Refusal
        (ConcurrentWrites, StoreUnavailable) that refused it."""
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
                        submission.future.set_exception(StoreUnavailable(str(exc)))

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
                except Refusal as refusal:
                    submission.future.set_exception(refusal)
            if not accepted:
                return
            recordings = self.cases.save(*working.values())
        except (IntegrityError, DataKeyErased, _StaleCase):
            # Another writer changed (or erased) one of these cases: redo each submission on its own.
            self.cases.forget(set(working))
            for submission in group:
                if not submission.future.done():
                    self._commit_alone(submission)
            return
        self._resolve(accepted, recordings)

    def _commit_alone(self, submission: _Submission) -> None:
        for attempt in range(MAX_ATTEMPTS):
            working: dict[str, Case] = {}
            try:
                owners = self.cases.key_owners({e.key for e in submission.events})
                planned = self._check(submission, working, owners, {})
                recordings = self.cases.save(*working.values())
            except Refusal as refusal:
                submission.future.set_exception(refusal)
                return
            except (IntegrityError, DataKeyErased, _StaleCase):
                self.cases.forget(set(working))
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # let the other writer through
                continue
            self._resolve([(submission, planned)], recordings)
            return
        submission.future.set_exception(ConcurrentWrites())

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
                    raise NotActingFor.stored_case()
                if case is None and event.name == "case.opened" and not submission.acts_for(event.data["municipality"]):
                    raise NotActingFor.new_case(event)
                if case is not None and (sequence := case.duplicate_of(event)) is not None:
                    planned.append(Outcome(event, sequence, None, duplicate=True))
                    continue
                owner = taken.get(event.key) or claimed.get(event.key) or owners.get(event.key)
                if owner is not None:
                    if owner != Case.create_id(event.case_id):
                        raise EventIdUsed(event.source, event.id)
                    raise _StaleCase(event.case_id)  # stored in this case, which does not know it
                if case is None:
                    case = Case.open(event)
                else:
                    case.append(event, self.cases.catalog)
            except Refusal as refusal:
                self.cases.forget(set(touched))
                raise (InBatch(index, refusal) if len(events) > 1 else refusal) from None
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
