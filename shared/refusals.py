"""Why the domain refuses an event, in the domain's words: exceptions that know no HTTP. Each
names the field of the posted event it is about and the reason; the entrypoint that took the
event maps them to RFC 9457 problems in one place (services/case/problems.py)."""

from dataclasses import dataclass


class Refusal(Exception):
    """An event the case's history, the catalog or the law does not allow."""

    field: str  # dotted path in the posted event, e.g. "data.date"
    reason: str


@dataclass
class InvalidEvent(Refusal):
    """The event contradicts itself, the case or the catalog (a benefit ending before it
    started, a rule the catalog does not know)."""

    field: str
    reason: str


@dataclass
class NotPermitted(Refusal):
    """The law forbids the event for this case, and no trial in force permits it."""

    rule: str  # the catalog's rule that forbids it
    field: str
    reason: str
