"""A case's history as its municipality reads it: the events as posted, CPR number masked."""

from typing import Any

from services.case.cases import Cases
from services.case.domain import Case, CaseErased
from services.case.keys import DataKeyErased


def history(cases: Cases, case_id: str) -> list[dict[str, Any]] | None:
    """The case's events as posted, in order, with the CPR number masked; None for no such case."""
    try:
        events = list(cases.repository.event_store.get(Case.create_id(case_id)))
    except DataKeyErased:
        raise CaseErased(case_id) from None
    if not events:
        return None
    if isinstance(events[-1], Case.Erased):  # its key is about to go
        raise CaseErased(case_id)
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


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    if "cpr" not in data:
        return data
    return {**data, "cpr": data["cpr"][:6] + "-****"}
