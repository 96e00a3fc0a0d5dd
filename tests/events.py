"""Builders for posted events, as a jobcenter system would send them."""

import itertools
from typing import Any

_ids = itertools.count(1)

# the example event of the integration contract (docs/API.md)
CONTRACT_EXAMPLE = {
    "specversion": "1.0",
    "id": "momentum-000123",
    "source": "jobcenter/851/momentum",
    "type": "dk.frisag.benefit.started",
    "subject": "case-42",
    "time": "2019-01-02T08:00:00Z",
    "data": {"benefit": "ledighedsydelse", "date": "2019-01-01"},
}


def event(type_: str, subject: str, source: str = "jobcenter/851/momentum", id_: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id_ or f"evt-{next(_ids)}",
        "source": source,
        "type": f"dk.frisag.{type_}",
        "subject": subject,
        "time": "2019-01-02T08:00:00Z",
        "data": data,
    }


def opened(subject: str, municipality: str = "851", date: str = "2019-01-01", cpr: str = "010190-1234", **kw: Any) -> dict[str, Any]:
    return event("case.opened", subject, cpr=cpr, municipality=municipality, date=date, **kw)


def benefit_started(subject: str, benefit: str = "ledighedsydelse", date: str = "2019-01-01", **kw: Any) -> dict[str, Any]:
    return event("benefit.started", subject, benefit=benefit, date=date, **kw)


def benefit_ended(subject: str, benefit: str = "ledighedsydelse", date: str = "2019-06-30", reason: str = "job", **kw: Any) -> dict[str, Any]:
    return event("benefit.ended", subject, benefit=benefit, date=date, reason=reason, **kw)
