"""The event contract (docs/API.md): what jobcenter systems post, and what travels on the stream.

Posted events are CloudEvents 1.0 in structured JSON. `parse_event` validates one and returns an
`IncomingEvent` with normalised `data` (ISO dates, CPR as DDMMYY-SSSS), or raises a `Problem`
naming every field that is wrong. On the stream the same event travels as a `StreamEvent`: the
CPR number replaced by a keyed pseudonym, and the event's place in the store attached.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, Union
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
)

from shared import cpr as cpr_numbers
from shared.dates import within_range
from shared.municipalities import municipalities
from shared.problems import FieldError, Problem

TYPE_PREFIX = "dk.frisag."
CASE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DENMARK = ZoneInfo("Europe/Copenhagen")  # dates are Danish calendar days
_NO_CONTROLS = r"^[^\x00-\x1F\x7F]*$"


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a calendar date") from None
    return within_range(day)


def _municipality(value: str) -> str:
    if value not in municipalities():
        raise ValueError("is not one of the 98 kommunekoder")
    return value


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_ESSENCE = re.compile(rf"^{_TOKEN}/{_TOKEN}$")
JSON_TYPE = "application/json"


def media_type(value: str) -> str | None:
    """The essence (`type/subtype`, lower case) of a Content-Type or `datacontenttype` (RFC 9110
    8.3.1) whose text the service can read: parameters are allowed, a charset only UTF-8 (JSON
    between systems is UTF-8, RFC 8259 8.1); None for anything else."""
    essence, *parameters = value.split(";")
    essence = essence.strip().lower()
    if not _ESSENCE.match(essence):
        return None
    for parameter in parameters:
        name, _, given = parameter.partition("=")
        if name.strip().lower() == "charset" and given.strip().strip('"').lower() != "utf-8":
            return None
    return essence


def _json_data(value: str) -> str:
    if media_type(value) != JSON_TYPE:
        raise ValueError(f"must be {JSON_TYPE} (parameters allowed, a charset only utf-8)")
    return value


def _no_cpr(value: str) -> str:
    # personal data must not ride along in a field that leaves the case service in clear
    if cpr_numbers.find_in(value):
        raise ValueError("holds what looks like a CPR number; no CPR number may be sent in this field "
                         "(only in case.opened's data.cpr)")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Municipality = Annotated[str, Field(strict=True), AfterValidator(_municipality)]
Cpr = Annotated[str, Field(strict=True), AfterValidator(cpr_numbers.normalise)]
Code = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9ÆØÅæøå._-]{1,64}$"), AfterValidator(_no_cpr)]
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=500), AfterValidator(_no_cpr)]
TrialId = Annotated[str, StringConstraints(strict=True, pattern=r"^T([1-9]|1[0-9]|2[0-4])$")]
RuleId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]+(-[A-Za-z0-9]+)*$")]


class Benefit(StrEnum):
    DAGPENGE = "dagpenge"
    KONTANTHJAELP = "kontanthjaelp"
    UDDANNELSESHJAELP = "uddannelseshjaelp"
    SYGEDAGPENGE = "sygedagpenge"
    LEDIGHEDSYDELSE = "ledighedsydelse"
    RESSOURCEFORLOEB = "ressourceforloeb"
    JOBAFKLARINGSFORLOEB = "jobafklaringsforloeb"
    REVALIDERING = "revalidering"
    FLEKSJOB = "fleksjob"
    FOERTIDSPENSION = "foertidspension"
    INTEGRATIONSYDELSE = "integrationsydelse"


class Offer(StrEnum):
    VIRKSOMHEDSPRAKTIK = "virksomhedspraktik"
    LOENTILSKUD = "loentilskud"
    VEJLEDNING_OPKVALIFICERING = "vejledning-opkvalificering"
    MENTOR = "mentor"
    PSYKOLOGBEHANDLING = "psykologbehandling"
    IGU = "igu"
    JOBROTATION = "jobrotation"


class ExitReason(StrEnum):
    JOB = "job"
    EDUCATION = "education"
    OTHER_BENEFIT = "other_benefit"
    MOVED_ABROAD = "moved_abroad"
    OTHER = "other"


class ConversationKind(StrEnum):
    JOBSAMTALE = "jobsamtale"
    OPFOELGNINGSSAMTALE = "opfoelgningssamtale"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: IsoDate


class CaseOpened(_Data):
    cpr: Cpr
    municipality: Municipality


class CaseMoved(_Data):
    municipality: Municipality


class CaseAssigned(_Data):
    caseworker: Code


class CaseClosed(_Data):
    reason: ExitReason


class BenefitStarted(_Data):
    benefit: Benefit


class BenefitEnded(_Data):
    benefit: Benefit
    reason: ExitReason


class ConversationHeld(_Data):
    kind: ConversationKind


class AssessmentCompleted(_Data):
    kind: Code


class OfferChanged(_Data):
    offer: Offer


class Dated(_Data):
    pass


class RehabTeamMeetingHeld(_Data):
    recommendation: Text


class MedicalCertificateObtained(_Data):
    form: Annotated[str, StringConstraints(strict=True, pattern=r"^LÆ[0-9]{3}$")]


class TargetGroupAssessed(_Data):
    trial: TrialId
    in_target_group: Annotated[bool, Field(strict=True)]


class CadenceAgreed(_Data):
    rule: RuleId
    interval_days: Annotated[int, Field(strict=True, ge=1, le=366)]


DATA_SCHEMAS: dict[str, type[_Data]] = {
    "case.opened": CaseOpened,
    "case.moved": CaseMoved,
    "case.assigned": CaseAssigned,
    "case.closed": CaseClosed,
    "benefit.started": BenefitStarted,
    "benefit.ended": BenefitEnded,
    "conversation.held": ConversationHeld,
    "assessment.completed": AssessmentCompleted,
    "offer.started": OfferChanged,
    "offer.ended": OfferChanged,
    "plan.updated": Dated,
    "rehab-team.meeting-held": RehabTeamMeetingHeld,
    "medical-certificate.obtained": MedicalCertificateObtained,
    "mentor.contact": Dated,
    "target-group.assessed": TargetGroupAssessed,
    "cadence.agreed": CadenceAgreed,
    "offer-duty.suspended": Dated,
    "offer-duty.resumed": Dated,
}
EVENT_TYPES = frozenset(TYPE_PREFIX + name for name in DATA_SCHEMAS)


class Envelope(BaseModel):
    """CloudEvents 1.0 context attributes as the contract uses them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    specversion: Literal["1.0"]
    # no control characters: they name nothing, and PostgreSQL stores no NUL in the key table
    id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=_NO_CONTROLS)]
    source: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256, pattern=_NO_CONTROLS)]
    type: Annotated[str, Field(strict=True)]
    subject: Annotated[str, StringConstraints(strict=True, pattern=CASE_ID_PATTERN), AfterValidator(_no_cpr)]
    time: datetime | None = None
    datacontenttype: Annotated[str, StringConstraints(strict=True, max_length=256),
                               AfterValidator(_json_data)] | None = None
    dataschema: Annotated[str, StringConstraints(strict=True, max_length=512)] | None = None
    # W3C trace context, as the CloudEvents distributed-tracing extension carries it
    traceparent: Annotated[str, StringConstraints(strict=True, max_length=55)] | None = None
    tracestate: Annotated[str, StringConstraints(strict=True, max_length=512)] | None = None
    data: dict[str, Any]


def event_json_schemas(ref_template: str) -> dict[str, Any]:
    """The JSON Schemas of a posted event, for the OpenAPI document (validation is
    `parse_event`'s): `CloudEvent`, one of the types, each named after it (`case.opened`:
    `CaseOpenedEvent`) the envelope with its data's schema (`CaseOpened`); they refer to each
    other by `ref_template`."""
    variants = [
        create_model("".join(word.capitalize() for word in re.split(r"[.-]", name)) + "Event", __base__=Envelope,
                     type=(Literal[TYPE_PREFIX + name], ...), data=(schema, ...))
        for name, schema in DATA_SCHEMAS.items()
    ]
    adapter = TypeAdapter(Annotated[Union[tuple(variants)], Field(discriminator="type")])  # noqa: UP007
    schema = adapter.json_schema(ref_template=ref_template)
    return {**schema.pop("$defs"), "CloudEvent": {"title": "CloudEvent", **schema}}


@dataclass(frozen=True)
class IncomingEvent:
    """A posted event that passed validation. `name` is the type without `dk.frisag.`."""

    id: str
    source: str
    name: str
    case_id: str
    time: str | None
    data: dict[str, Any]  # JSON-ready: dates as ISO strings
    traceparent: str | None = None  # W3C trace context the event came with, if any

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key."""
        return (self.source, self.id)

    @property
    def date(self) -> date:
        return date.fromisoformat(self.data["date"])


def _errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for e in exc.errors():
        where = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        reason = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            reason = "is not a field of this event"
        errors.append(FieldError(where, reason))
    return errors


def _invalid(errors: list[FieldError]) -> Problem:
    return Problem(422, "invalid-event", "Invalid event", errors=errors)


def parse_event(document: Any) -> IncomingEvent:
    """Validate one posted CloudEvent; raise Problem(422) listing every wrong field."""
    if not isinstance(document, dict):
        raise _invalid([FieldError("", "an event must be a JSON object")])
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        raise _invalid(_errors(exc)) from None
    if envelope.type not in EVENT_TYPES:
        raise _invalid([FieldError("type", f"unknown event type; one of {sorted(EVENT_TYPES)}")])
    name = envelope.type.removeprefix(TYPE_PREFIX)
    try:
        data = DATA_SCHEMAS[name].model_validate(envelope.data)
    except ValidationError as exc:
        raise _invalid(_errors(exc, "data")) from None
    if isinstance(data, CaseOpened):
        _check_born(data)
    return IncomingEvent(
        id=envelope.id,
        source=envelope.source,
        name=name,
        case_id=envelope.subject,
        time=envelope.time.isoformat() if envelope.time else None,
        data=data.model_dump(mode="json"),
        traceparent=envelope.traceparent,
    )


def _check_born(opened: CaseOpened) -> None:
    """Nobody is born after the day the event is processed, nor after the case was opened."""
    try:
        cpr_numbers.check_born_by(opened.cpr, _danish_today(), "today")
        cpr_numbers.check_born_by(opened.cpr, opened.date, "the case's opening (data.date)")
    except ValueError as exc:
        raise _invalid([FieldError("data.cpr", str(exc))]) from None


def _danish_today() -> date:
    return datetime.now(_DENMARK).date()


def parse_batch(documents: Any) -> list[IncomingEvent]:
    """Validate a batch; one bad event refuses all of it, naming its index."""
    if not isinstance(documents, list) or not documents:
        raise _invalid([FieldError("", "a batch must be a non-empty JSON array of events")])
    events = []
    for index, document in enumerate(documents):
        try:
            events.append(parse_event(document))
        except Problem as problem:
            raise problem.prefixed(f"[{index}]") from None
    return events


class StreamEvent(NamedTuple):  # a tuple, not a frozen dataclass: 10x faster to make, per message
    """An event as consumers see it: the posted CloudEvent with the CPR number pseudonymised,
    plus `sequence` (its number within the case, from 1) and `position` (in the case store's
    log, increasing), and `permitted_by` where only a trial permits it. Consumers apply an
    event only if its sequence is later than the last they applied for its case."""

    id: str
    source: str
    type: str  # full CloudEvents type, e.g. dk.frisag.benefit.started
    subject: str  # case id
    time: str | None
    data: dict[str, Any]
    sequence: int
    position: int
    permitted_by: str | None = None  # the trial whose permission the event needed
    traceparent: str | None = None  # W3C trace context of the request that stored it

    @property
    def name(self) -> str:
        return self.type.removeprefix(TYPE_PREFIX)
