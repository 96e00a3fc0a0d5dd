"""The obligations projection: the stream stored exactly once (`shared.projection`), and the
obligations the fold derives from each case, with the municipalities responsible for it over
time, for worklists."""

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Date, Engine, Integer, MetaData, String, Table, and_, case, func, or_, select

from shared.catalog import Catalog
from shared import fold_version
from shared.obligations import DUE_SOON, Obligation, fold_timeline
from shared.projection import ERROR_LENGTH, CaseNotDerivedError, CaseProjection, Derivation, StoredEvent
from shared.timeline import Timeline, trial_periods

STATUSES = ("upcoming", "due", "overdue", "done", "waived", "suspended")
HORIZON = timedelta(days=400)  # stored obligations reach this far past today and the last event

metadata = MetaData()
responsibility = Table(  # which municipality is responsible for a case, from when
    "obligations_responsibility", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),  # exclusive; None while it lasts
    Column("municipality", String(3), nullable=False, index=True),
    Column("folded_to", Date),  # the case's obligations are stored up to this date (migration 0004)
    fold_version.column(),
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
        horizon = max(timeline.last_date, self.today()) + HORIZON
        folded = fold_timeline(timeline, self.catalog, horizon)
        if timeline.closed is not None:
            horizon = date.max  # nothing arises after it closed: complete for any date
        caseworker = timeline.caseworker
        return {obligations: [_row(case_id, n, o, caseworker) for n, o in enumerate(folded)],
                responsibility: [{"case_id": case_id, "valid_from": start, "valid_to": until, "municipality": m,
                                  "folded_to": horizon, "fold_version": fold_version.FOLD_VERSION}
                                 for start, until, m in _worklist_periods(timeline)]}


class ObligationsProjection(CaseProjection):
    def __init__(self, engine: Engine, catalog: Catalog, group: str = "obligations",
                 today: Callable[[], date] = date.today) -> None:
        super().__init__(engine, "obligations", group, ObligationsDerivation(catalog, today))
        self._extended_on: date | None = None
        self._fold_watch = fold_version.Watch()
        self.refresh_marks()

    def refresh_marks(self) -> int:
        """Mark for deriving again the cases derived by another fold version (on start, then
        hourly: old pods may still derive during a rolling upgrade), and once a day the open
        cases folded more than half the horizon ago, so stored obligations keep reaching
        `HORIZON` past today. How many were marked."""
        marked = 0
        if self._fold_watch.due():
            marked += self.mark_stale(fold_version.derived_by_another(responsibility))
        today = self.derivation.today()
        if self._extended_on != today:
            self._extended_on = today
            marked += self.mark_stale(select(responsibility.c.case_id).where(responsibility.c.folded_to < today + HORIZON / 2))
        return marked

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

    def for_case(self, case_id: str, as_of: date) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]] | None:
        """Exact: folded from the case's stored events as of that date; with the municipality
        responsible for the case then (None before it was opened) and when which trials apply to
        it. None for no such case; CaseNotDerivedError for one the fold failed for (in the
        projection, or now)."""
        events = self.history(case_id)
        if events is None:
            return None
        failure, municipality = self.failure(case_id), None
        try:
            timeline = Timeline.build(events, as_of)
            municipality = timeline.municipality_on(as_of)
            if failure is None:
                return (municipality, [o.as_json(case_id, as_of) for o in fold_timeline(timeline, self.catalog, as_of)],
                        self._trial_periods(timeline))
        except Exception as exc:  # noqa: BLE001 - a fold failing for this case, as the projection's did
            failure = failure or {"error": f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]}
        raise CaseNotDerivedError(case_id, failure, municipality or failure.get("municipality"))

    def _trial_periods(self, timeline: Timeline) -> list[dict[str, Any]]:
        places = {m for _, m in timeline.municipalities}
        trials = sorted((t for t in self.catalog.trials.values() if not places.isdisjoint(t.municipalities)),
                        key=lambda t: int(t.id[1:]))
        return [{"trial": trial.id, "title": trial.title, "from": start.isoformat(), "to": end and end.isoformat()}
                for trial, start, end in trial_periods(trials, timeline)]

    def worklist(self, *, as_of: date, municipality: str | None = None, caseworker: str | None = None,
                 statuses: Sequence[str] = (), rule: str | None = None, trial: str | None = None,
                 due_before: date | None = None, due_after: date | None = None,
                 descending: bool = False, limit: int = 100,
                 after: tuple[date, str, int] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Obligations of the cases a municipality is responsible for on `as_of`: those the
        case page as of that date lists (`arises_on`), in any of `statuses` (all when empty), of
        `rule`, exempted or changed by `trial`, by due date (latest first when `descending`),
        `limit` at a time after the cursor `after`; and how many there are in all."""
        o = obligations
        query = _listed(select(o), as_of, municipality, caseworker, rule, trial, due_before, due_after)
        if statuses:
            query = query.where(or_(*(status_is(status, as_of) for status in statuses)))
        total = select(func.count()).select_from(query.subquery())
        order = (o.c.due, o.c.case_id, o.c.n)
        if after is not None:
            due, case_id, n = after
            later = (lambda column, value: column < value) if descending else (lambda column, value: column > value)
            query = query.where(or_(later(o.c.due, due), and_(o.c.due == due, or_(
                later(o.c.case_id, case_id), and_(o.c.case_id == case_id, later(o.c.n, n))))))
        query = query.order_by(*(c.desc() for c in order) if descending else order).limit(limit)
        with self.engine.connect() as conn:
            return [_from_row(row, as_of) for row in conn.execute(query).mappings()], conn.execute(total).scalar_one()

    def tally(self, *, as_of: date, municipality: str | None = None, caseworker: str | None = None,
              rule: str | None = None, trial: str | None = None, due_before: date | None = None,
              due_after: date | None = None) -> dict[str | None, dict[str, int]]:
        """How many of the obligations `worklist` lists for these filters each caseworker (None:
        cases assigned to no one) has in each status; statuses with none left out."""
        o = obligations
        status = case(*((status_is(s, as_of), s) for s in STATUSES))
        query = _listed(select(o.c.caseworker, status.label("status"), func.count().label("n")),
                        as_of, municipality, caseworker, rule, trial, due_before, due_after)
        counts: dict[str | None, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query.group_by(o.c.caseworker, status)):
                counts.setdefault(row.caseworker, {})[row.status] = row.n
        return counts

    def stored_until(self, municipality: str, as_of: date) -> date | None:
        """How far ahead the obligations of the cases `municipality` is responsible for on
        `as_of` are stored: the earliest of their folds' horizons (None when one is unknown,
        folded before horizons were recorded)."""
        r = responsibility
        covering = and_(r.c.municipality == municipality, r.c.valid_from <= as_of, or_(r.c.valid_to.is_(None), r.c.valid_to > as_of))
        with self.engine.connect() as conn:
            unknown = conn.execute(select(r.c.case_id).where(covering, r.c.folded_to.is_(None)).limit(1)).first()
            earliest = conn.execute(select(func.min(r.c.folded_to)).where(covering)).scalar()
        return None if unknown else (earliest or date.max)

    def changes(self, municipality: str, after: int | None) -> tuple[int, list[tuple[int, str]]]:
        """The clock's tick now, and (tick, case_id) of the cases derived after tick `after` (from
        now when None), up to the tick read, oldest first: those of cases
        `municipality` was ever responsible for, or is by their latest events when the fold failed.
        Ticks commit in order, so reading again after the last tick read misses nothing; a case
        derived again since is listed once, at its latest tick."""
        cases, r, f = self.cases, responsibility, self.failed_cases
        with self.engine.connect() as conn:
            tick = conn.execute(select(self.clock.c.tick)).scalar_one()
            if after is None or after >= tick:
                return tick, []
            ours = or_(select(r.c.case_id).where(r.c.case_id == cases.c.case_id, r.c.municipality == municipality).exists(),
                       select(f.c.case_id).where(f.c.case_id == cases.c.case_id, f.c.municipality == municipality).exists())
            found = conn.execute(select(cases.c.derived_tick, cases.c.case_id)
                                 .where(cases.c.derived_tick > after, cases.c.derived_tick <= tick, ours)
                                 .order_by(cases.c.derived_tick, cases.c.case_id)).all()
        return tick, [tuple(row) for row in found]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            derived = conn.execute(select(func.count()).select_from(obligations)).scalar()
        return {**super().counts(), "obligations": derived}


def _worklist_periods(timeline: Timeline) -> list[tuple[date, date | None, str]]:
    """Whose worklist the case is on when: the responsible municipality's, up to its closing
    day. After it, nothing can be done on the case (nothing is posted after case.closed), and a
    municipality's worklist stays the size of its open caseload, not of every case it ever had.
    A period from after the closing day (a move dated later than a back-dated closing) is kept,
    empty: the municipality was still responsible for the case once, for its change feed and
    the catalog's re-marks."""
    if timeline.closed is None:
        return timeline.responsibility()
    ends = timeline.closed + timedelta(days=1)
    return [(start, max(start, ends if until is None else min(until, ends)), m)
            for start, until, m in timeline.responsibility()]


def _listed(query, as_of: date, municipality: str | None, caseworker: str | None, rule: str | None,
            trial: str | None, due_before: date | None, due_after: date | None):
    """`query` of the obligations listed as of `as_of` for a worklist with these filters."""
    o, r = obligations, responsibility
    query = query.where(o.c.arises_on <= as_of)
    if municipality is not None:
        query = query.join(r, and_(r.c.case_id == o.c.case_id, r.c.valid_from <= as_of,
                                   or_(r.c.valid_to.is_(None), r.c.valid_to > as_of))).where(r.c.municipality == municipality)
    if caseworker is not None:
        query = query.where(o.c.caseworker == caseworker)
    if rule is not None:
        query = query.where(o.c.rule == rule)
    if trial is not None:  # the trial that waives, suspends or changes it
        query = query.where(o.c.document[("exemption", "trial")].as_string() == trial)
    if due_before is not None:
        query = query.where(o.c.due <= due_before)
    if due_after is not None:
        query = query.where(o.c.due >= due_after)
    return query


def status_is(status: str, as_of: date):
    """`Obligation.status(as_of) == status` in SQL: the one definition of the statuses, for the
    stored rows (a test holds the two to each other)."""
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
