"""The obligations projection: the stream stored exactly once (`shared.projection`), and the
obligations the fold derives from each case, with the municipalities responsible for it over
time, for worklists."""

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Date, Engine, Integer, MetaData, String, Table, and_, func, or_, select

from shared.catalog import Catalog
from shared.obligations import DUE_SOON, Obligation, fold_timeline
from shared.projection import ERROR_LENGTH, CaseNotDerivedError, CaseProjection, Derivation, StoredEvent
from shared.timeline import Timeline

HORIZON = timedelta(days=400)  # stored obligations reach this far past today and the last event

metadata = MetaData()
responsibility = Table(  # which municipality is responsible for a case, from when
    "obligations_responsibility", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),  # exclusive; None while it lasts
    Column("municipality", String(3), nullable=False, index=True),
)
obligations = Table(
    "obligations", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("rule", String(64), nullable=False),
    Column("due", Date, nullable=False, index=True),
    Column("deadline", Date, nullable=False),
    Column("arises_on", Date, nullable=False),
    Column("basis", String(16), nullable=False),
    Column("done_on", Date),
    Column("municipality", String(3)),
    Column("caseworker", String(64)),
    Column("document", JSON, nullable=False),  # title, legal reference, exemption, because
)


class ObligationsDerivation(Derivation):
    tables = (obligations, responsibility)

    def __init__(self, catalog: Catalog, today: Callable[[], date]) -> None:
        self.catalog, self.today = catalog, today

    def inputs(self) -> bytes:
        return self.catalog.fingerprint()

    def derive(self, case_id: str, events: list[StoredEvent]) -> dict[Table, list[dict[str, Any]]]:
        timeline = Timeline.build(events)  # once, for the fold and for who is responsible when
        folded = fold_timeline(timeline, self.catalog, max(timeline.last_date, self.today()) + HORIZON)
        caseworker = timeline.caseworker
        return {obligations: [_row(case_id, n, o, caseworker) for n, o in enumerate(folded)],
                responsibility: [{"case_id": case_id, "valid_from": start, "valid_to": until, "municipality": m}
                                 for start, until, m in timeline.responsibility()]}


class ObligationsProjection(CaseProjection):
    def __init__(self, engine: Engine, catalog: Catalog, group: str = "obligations",
                 today: Callable[[], date] = date.today) -> None:
        super().__init__(engine, "obligations", group, ObligationsDerivation(catalog, today))

    @property
    def catalog(self) -> Catalog:
        return self.derivation.catalog

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        self.derivation = ObligationsDerivation(catalog, self.derivation.today)

    def mark_stale_in(self, municipalities: Iterable[str] | None = None) -> int:
        """After a catalog change: cases ever the responsibility of one of `municipalities`
        (all cases when None) are folded again."""
        if municipalities is None:
            return self.mark_stale()
        return self.mark_stale(select(responsibility.c.case_id).where(responsibility.c.municipality.in_(list(municipalities))))

    def for_case(self, case_id: str, as_of: date) -> tuple[str | None, list[dict[str, Any]]] | None:
        """Exact: folded from the case's stored events as of that date; with the municipality
        responsible for the case then (None before it was opened). None for no such case;
        CaseNotDerivedError for one the fold failed for (in the projection, or now)."""
        events = self.history(case_id)
        if events is None:
            return None
        failure, municipality = self.failure(case_id), None
        try:
            timeline = Timeline.build(events, as_of)
            municipality = timeline.municipality_on(as_of)
            if failure is None:
                return municipality, [o.as_json(case_id, as_of) for o in fold_timeline(timeline, self.catalog, as_of)]
        except Exception as exc:  # noqa: BLE001 - a fold failing for this case, as the projection's did
            failure = failure or {"error": f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]}
        raise CaseNotDerivedError(case_id, failure, municipality or failure.get("municipality"))

    def worklist(self, *, as_of: date, municipality: str | None = None, caseworker: str | None = None,
                 status: str | None = None, due_before: date | None = None, due_after: date | None = None,
                 limit: int = 100, after: tuple[date, str, int] | None = None) -> list[dict[str, Any]]:
        """Obligations of the cases a municipality is responsible for on `as_of`, by due date."""
        o, r = obligations, responsibility
        query = select(o).where(o.c.arises_on <= as_of)
        if municipality is not None:
            query = query.join(r, and_(r.c.case_id == o.c.case_id, r.c.valid_from <= as_of,
                                       or_(r.c.valid_to.is_(None), r.c.valid_to > as_of))).where(r.c.municipality == municipality)
        if caseworker is not None:
            query = query.where(o.c.caseworker == caseworker)
        if due_before is not None:
            query = query.where(o.c.due <= due_before)
        if due_after is not None:
            query = query.where(o.c.due >= due_after)
        if status is not None:
            query = query.where(_status_is(status, as_of))
        if after is not None:
            due, case_id, n = after
            query = query.where(or_(o.c.due > due, and_(o.c.due == due, or_(
                o.c.case_id > case_id, and_(o.c.case_id == case_id, o.c.n > n)))))
        query = query.order_by(o.c.due, o.c.case_id, o.c.n).limit(limit)
        with self.engine.connect() as conn:
            return [_from_row(row, as_of) for row in conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            derived = conn.execute(select(func.count()).select_from(obligations)).scalar()
        return {**super().counts(), "obligations": derived}


def _status_is(status: str, as_of: date):
    o = obligations
    open_ = and_(o.c.basis == "required", or_(o.c.done_on.is_(None), o.c.done_on > as_of))
    return {
        "waived": o.c.basis == "waived",
        "suspended": o.c.basis == "suspended",
        "done": and_(o.c.basis == "required", o.c.done_on <= as_of),
        "overdue": and_(open_, o.c.deadline < as_of),
        "due": and_(open_, o.c.deadline >= as_of, o.c.due <= as_of + DUE_SOON),
        "upcoming": and_(open_, o.c.due > as_of + DUE_SOON),
    }[status]


def _row(case_id: str, n: int, o: Obligation, caseworker: str | None) -> dict[str, Any]:
    return {
        "case_id": case_id, "n": n, "rule": o.rule, "due": o.due, "deadline": o.deadline, "arises_on": o.arises_on,
        "basis": o.basis, "done_on": o.done_on, "municipality": o.municipality, "caseworker": caseworker,
        "document": {"title": o.title, "legal_reference": o.legal_reference,
                     "exemption": o.exemption.as_json() if o.exemption else None, "because": list(o.because)},
    }


def _from_row(row, as_of: date) -> dict[str, Any]:
    o = Obligation(
        rule=row["rule"], title=row["document"]["title"], legal_reference=row["document"]["legal_reference"],
        due=row["due"], deadline=row["deadline"], arises_on=row["arises_on"], basis=row["basis"],
        municipality=row["municipality"], done_on=row["done_on"], because=tuple(row["document"]["because"]),
    )
    answer = o.as_json(row["case_id"], as_of)
    answer["exemption"] = row["document"]["exemption"]
    answer["caseworker"] = row["caseworker"]
    answer["cursor"] = f"{row['due'].isoformat()}|{row['case_id']}|{row['n']}"
    return answer
