"""Erasing a case (crypto-shredding, `services.case.keys`): on request, and when its retention
after closing has run out."""

from datetime import date, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from services.case.cases import MAX_ATTEMPTS, Cases, ConcurrentWrites
from services.case.domain import Case
from services.case.keys import ERASED_TOPIC, DataKeyErased


def erase(cases: Cases, case_id: str, reason: str, today: date) -> dict[str, Any] | None:
    """Erase a case: record its erasure (for the stream), then forget its data key. Once more
    for an erased case finishes an erasure that was cut off, and answers as before. None for no
    such case."""
    return _erase(cases, Case.create_id(case_id), reason, today)


def sweep(cases: Cases, retention_days: int, today: date) -> int:
    """Finish erasures that were cut off; with a retention period, erase every case closed more
    than `retention_days` before `today`; then scrub the erased keys from the key table's files
    (those erased since the last sweep, here or by another replica). Returns how many cases it
    erased."""
    count = _erase_due(cases, retention_days, today)
    cases.keys.scrub()
    return count


def _erase_due(cases: Cases, retention_days: int, today: date) -> int:
    count = 0
    for case_uuid, reason in cases.keys.unfinished():
        count += _erase(cases, case_uuid, reason, today) is not None
    if not retention_days:
        return count
    cutoff = today - timedelta(days=retention_days)
    for case_uuid in cases.keys.closed_before(cutoff):
        try:
            case = cases.stored(case_uuid)
        except DataKeyErased:
            continue
        # the date beside the key was written before the closing event: the case decides
        if case is not None and case.closed_on is not None and date.fromisoformat(case.closed_on) < cutoff:
            count += _erase(cases, case_uuid, "retention", today) is not None
    return count


def _erase(cases: Cases, case_uuid: UUID, reason: str, today: date) -> dict[str, Any] | None:
    for _ in range(MAX_ATTEMPTS):
        erasure = _erasure(cases, case_uuid)
        if erasure is not None:
            cases.keys.erase(case_uuid)
            cases.forget({erasure["case_id"]})
            return erasure
        try:
            case = cases.stored(case_uuid)
        except DataKeyErased:  # another caller erased it just now: its erasure is found next round
            continue
        if case is None:
            return None
        if case.erased_on is not None:  # erased between the two reads: as above
            continue
        cases.keys.begin_erasure(case_uuid, reason)  # if this is cut off, the next sweep finishes it
        case.erase(today, reason)
        try:
            cases.save(case)
        except IntegrityError:  # an event came in meanwhile: erase the case as it is now
            continue
    raise ConcurrentWrites(case_uuid)


def _erasure(cases: Cases, case_uuid: UUID) -> dict[str, Any] | None:
    """The case's erasure, if it has one: always its last event."""
    last = cases.recorder.select_events(case_uuid, desc=True, limit=1)
    if not last or last[0].topic != ERASED_TOPIC:
        return None
    stored = cases.mapper.to_domain_event(last[0])
    return {"case_id": stored.envelope["subject"], "erased_on": stored.data["date"],
            "reason": stored.data["reason"], "sequence": stored.originator_version}
