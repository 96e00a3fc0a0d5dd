"""The case store's log as the stream's consumers see it (what the relay publishes): CloudEvents
with the CPR number pseudonymised."""

from typing import Any

from services.case.cases import Cases
from services.case.keys import ERASED_TOPIC, DataKeyErased
from shared import cpr as cpr_numbers
from shared.events import StreamEvent


def stream_events(cases: Cases, after: int, limit: int) -> list[StreamEvent]:
    """Stored events after a log position, as consumers see them: CPR pseudonymised. An erased
    case's events are left out (they cannot be read); its erasure, later in the log, is not."""
    while notifications := cases.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False):
        cases.keys.load(n.originator_id for n in notifications if n.topic != ERASED_TOPIC)
        events = []
        for n in notifications:
            try:
                events.append(_stream_event(cases.mapper.to_domain_event(n), n.id, cases.pseudonym_key))
            except DataKeyErased:
                pass
        if events:
            return events
        after = notifications[-1].id
    return []


def _stream_event(stored: Any, position: int, pseudonym_key: bytes) -> StreamEvent:
    data = stored.data
    if "cpr" in data:
        data = {k: v for k, v in data.items() if k != "cpr"}
        data["citizen"] = cpr_numbers.pseudonym(stored.data["cpr"], pseudonym_key)
    envelope = stored.envelope
    return StreamEvent(
        id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        subject=envelope["subject"],
        # CloudEvents' `time` is when the occurrence happened: for an event posted without one, when
        # the case service accepted it (recorded with it), so every reader sees the same time
        time=envelope["time"] or stored.timestamp.isoformat(),
        data=data,
        sequence=stored.originator_version,
        position=position,
        permitted_by=envelope.get("permittedby"),
        traceparent=envelope.get("traceparent"),
    )
