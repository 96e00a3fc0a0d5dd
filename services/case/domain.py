"""The Case aggregate: one citizen's course in a jobcenter, as the posting systems reported it.

Each posted event becomes one aggregate event. The aggregate refuses an impossible history
(nothing before `case.opened`, nothing after `case.closed` or an erasure, benefits that end
before they start or twice) and actions that only a trial permits outside that trial (`shared.permissions`,
deciding from the catalogs), and it remembers the idempotency keys it has stored, with what
each event said, so a repeat is told from another event under a used key.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from shared import cpr as cpr_numbers
from shared.catalog import Catalog
from shared.events import IncomingEvent
from shared.permissions import decide
from shared.refusals import InvalidEvent, Refusal

_CASE_NAMESPACE = uuid5(NAMESPACE_URL, "https://frisag.dk/cases/")
ERASURE_SOURCE = "urn:frisag:case-service"  # the CloudEvents source of erasures


class Happened(NamedTuple):
    """What the case's history holds of each event, for the permission checks."""

    name: str
    data: dict[str, Any]


@dataclass
class CaseConflict(Refusal):
    """The event cannot follow the case's history (nothing before case.opened, nothing after
    case.closed, a benefit started twice or ended without running)."""

    field: str
    reason: str


@dataclass
class EventIdUsed(Refusal):
    """Another event was stored under this event's (source, id); which, and where, is not said:
    it may be another municipality's case."""

    source: str
    event_id: str
    field = "id"

    @property
    def reason(self) -> str:
        return (f"source {self.source} already used id {self.event_id} for a different event: (source, id) "
                "names one event; send this one under an id of its own")


@dataclass
class CaseErased(Refusal):
    """The case's personal data was erased: it can be neither read nor added to."""

    case_id: str
    field = "subject"

    @property
    def reason(self) -> str:
        return f"case {self.case_id} was erased: its data is gone"


class Case(Aggregate):
    @staticmethod
    def create_id(case_id: str) -> UUID:
        return uuid5(_CASE_NAMESPACE, case_id)

    @classmethod
    def open(cls, incoming: IncomingEvent) -> "Case":
        if incoming.name != "case.opened":
            raise CaseConflict("type", "the case has not been opened: its first event must be case.opened")
        return cls(case_id=incoming.case_id, envelope=_envelope(incoming), data=incoming.data)

    @event("Opened")
    def __init__(self, case_id: str, envelope: dict[str, Any], data: dict[str, Any]) -> None:
        self.case_id = case_id
        self.municipality: str = data["municipality"]
        self.closed_on: str | None = None
        self.erased_on: str | None = None
        self.running_benefits: dict[str, str] = {}  # benefit -> start date of the running spell
        # key -> (sequence, (name, data)): what a repeat must say to be the same event
        self.keys: dict[tuple[str, str], tuple[int, tuple[str, dict[str, Any]]]] = {
            (envelope["source"], envelope["id"]): (1, ("case.opened", data))}
        self.birth_date: date = cpr_numbers.birth_date(data["cpr"])
        self.history: list[Happened] = [Happened("case.opened", _without_cpr(data))]

    def duplicate_of(self, incoming: IncomingEvent) -> int | None:
        """The sequence number this event was stored with, if it was stored before; a 409 if its
        key was stored with another event (EventIdUsed). The subject is the case's, so only type and data can
        differ (`time` and trace context are about the posting, not the event)."""
        stored = self.keys.get(incoming.key)
        if stored is None:
            return None
        sequence, said = stored
        if said != (incoming.name, incoming.data):
            raise EventIdUsed(incoming.source, incoming.id)
        return sequence

    def append(self, incoming: IncomingEvent, catalog: Catalog) -> None:
        """Record a posted event, or raise a Refusal saying why the history or the law forbids it."""
        data = incoming.data
        if self.erased_on is not None:
            raise CaseErased(self.case_id)
        if incoming.name == "case.opened":
            raise CaseConflict("type", "the case is already open")
        if self.closed_on is not None:
            raise CaseConflict("type", f"the case was closed on {self.closed_on}: nothing can follow case.closed")
        if incoming.name == "case.closed" and data["date"] < (opened := self.history[0].data["date"]):
            raise InvalidEvent("data.date", f"the case cannot close before it was opened on {opened}")
        if incoming.name == "benefit.started" and data["benefit"] in self.running_benefits:
            started = self.running_benefits[data["benefit"]]
            raise CaseConflict("data.benefit", f"{data['benefit']} already runs since {started}")
        if incoming.name == "benefit.ended":
            started = self.running_benefits.get(data["benefit"])
            if started is None:
                raise CaseConflict("data.benefit", f"{data['benefit']} is not running: it never started or already ended")
            if data["date"] < started:
                raise InvalidEvent("data.date", f"{data['benefit']} cannot end before it started on {started}")
        decision = decide(self.history, incoming, catalog, self.birth_date)
        if decision.refusal is not None:
            raise decision.refusal
        envelope = _envelope(incoming)
        if decision.permitted_by:
            envelope["permittedby"] = decision.permitted_by  # a CloudEvents extension attribute
        self.record(envelope=envelope, data=data)

    @event("Recorded")
    def record(self, envelope: dict[str, Any], data: dict[str, Any]) -> None:
        name = envelope["type"].removeprefix("dk.frisag.")
        if name == "case.moved":
            self.municipality = data["municipality"]
        elif name == "case.closed":
            self.closed_on = data["date"]
        elif name == "benefit.started":
            self.running_benefits[data["benefit"]] = data["date"]
        elif name == "benefit.ended":
            del self.running_benefits[data["benefit"]]
        self.keys[(envelope["source"], envelope["id"])] = (self.version + 1, (name, data))
        self.history.append(Happened(name, data))

    def erase(self, today: date, reason: str) -> None:
        """Record that the case's personal data is erased (crypto-shredding, `services.case.keys`):
        the stream tells its consumers to drop the case."""
        if self.erased_on is not None:
            raise CaseErased(self.case_id)
        envelope = {"id": str(uuid4()), "source": ERASURE_SOURCE, "type": "dk.frisag.case.erased",
                    "subject": self.case_id, "time": datetime.now(UTC).isoformat()}
        self.record_erasure(envelope=envelope, data={"date": today.isoformat(), "reason": reason})

    @event("Erased")
    def record_erasure(self, envelope: dict[str, Any], data: dict[str, Any]) -> None:
        self.erased_on = data["date"]


def _without_cpr(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "cpr"}


def _envelope(incoming: IncomingEvent) -> dict[str, Any]:
    return {
        "id": incoming.id,
        "source": incoming.source,
        "type": "dk.frisag." + incoming.name,
        "subject": incoming.case_id,
        "time": incoming.time,
        **({"traceparent": incoming.traceparent} if incoming.traceparent else {}),
    }
