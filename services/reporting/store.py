"""The reporting store: the stream stored exactly once (`shared.projection`), and per case the
facts the evaluation numbers are computed from. Only pseudonyms: nothing here names a citizen."""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import JSON, Column, Date, DateTime, Engine, Float, Integer, MetaData, String, Table

from shared import fold_version
from shared.catalog import Catalog
from shared.obligations import fold_timeline
from shared.projection import CaseProjection, Derivation, StoredEvent
from shared.timeline import Timeline

HORIZON = timedelta(days=400)
ANONYMOUS = "erased-"  # the id an erased case's facts are kept under begins so

metadata = MetaData()
citizens = Table(
    "reporting_citizens", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("citizen", String(64), nullable=False),
)
responsibility = Table(
    "reporting_responsibility", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),  # exclusive; None while it lasts
    Column("municipality", String(3), nullable=False, index=True),
    fold_version.column(),
)
obligations = Table(  # each obligation under the ordinary rules, and with the trials applied
    "reporting_obligations", metadata,
    Column("case_id", String(64), primary_key=True),
    # ordinary | trials; both: the case's obligations are the same either way, stored once
    Column("regime", String(8), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("rule", String(64), nullable=False),
    Column("due", Date, nullable=False),
    Column("deadline", Date, nullable=False),
    Column("basis", String(16), nullable=False),
    Column("done_on", Date),
    Column("trial", String(8)),
    Column("municipality", String(3)),
)
spells = Table(
    "reporting_spells", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("benefit", String(32), nullable=False),
    Column("start", Date, nullable=False),
    Column("end", Date),
    Column("end_reason", String(16)),
)
occurrences = Table(  # dated events the metrics count: conversations, exits, permitted actions
    "reporting_occurrences", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("detail", String(64)),  # kind, benefit, offer or rule
    Column("reason", String(16)),
    Column("permitted_by", String(8)),  # the trial whose permission it needed
)
what_if = Table(  # what-if scenarios asked (`whatif.WhatIfs`), each with its answer once computed
    "reporting_what_if", metadata,
    Column("id", String(36), primary_key=True),
    Column("requested_by", String(256), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("request", JSON, nullable=False),  # the scenario and the months asked: post it again to re-run
    Column("status", String(8), nullable=False),  # running | done | failed
    Column("progress", Float, nullable=False),  # share of the cases folded
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("result", JSON),
    Column("error", String(1000)),
)
COUNTED = {"conversation.held", "benefit.ended", "case.closed"}


class ReportingDerivation(Derivation):
    tables = (citizens, responsibility, obligations, spells, occurrences)

    def __init__(self, catalog: Catalog, today: Callable[[], date]) -> None:
        self.catalog, self.today = catalog, today
        self._tried: dict[frozenset[str], Catalog | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tried": {}}  # sent to worker processes with every job: made again there

    def tried_in(self, places: frozenset[str]) -> Catalog | None:
        """The catalog's rules a trial touches in one of `places`, with the trials; None: none.
        Under the trials, the other rules' occurrences are the ordinary ones (the fold asks
        only the trials of a case's municipalities, and derives each rule's on their own)."""
        if places not in self._tried:
            rules = {rule_id: rule for rule_id, rule in self.catalog.rules.items()
                     if any(not places.isdisjoint(t.municipalities) for t in self.catalog.trials_touching(rule_id))}
            self._tried[places] = Catalog(rules, self.catalog.trials) if rules else None
        return self._tried[places]

    def inputs(self) -> bytes:
        return self.catalog.fingerprint()

    def derive(self, case_id: str, events: list[StoredEvent]) -> dict[Table, list[dict[str, Any]]]:
        timeline = Timeline.build(events)
        horizon = max(timeline.last_date or self.today(), self.today()) + HORIZON
        rows: dict[Table, list[dict[str, Any]]] = {table: [] for table in self.tables}
        if timeline.citizen:
            rows[citizens].append({"case_id": case_id, "citizen": timeline.citizen})
        rows[responsibility] = [{"case_id": case_id, "valid_from": start, "valid_to": until, "municipality": m,
                                 "fold_version": fold_version.FOLD_VERSION} for start, until, m in timeline.responsibility()]
        # every occurrence the rules required, a missed one too (the full count, issue 14.9)
        ordinary = fold_timeline(timeline, self.catalog, horizon, trials=False, complete=True)
        under_trials = ordinary
        if tried := self.tried_in(frozenset(m for _, m in timeline.municipalities)):
            # in the whole fold's order: by due date and rule, a rule's own in the order folded
            under_trials = sorted([o for o in ordinary if o.rule not in tried.rules]
                                  + fold_timeline(timeline, tried, horizon, trials=True, complete=True),
                                  key=lambda o: (o.due, o.rule))
        # most cases no trial changes: their rows once (a quarter fewer rows in the synthetic population)
        regimes = [("both", ordinary)] if under_trials == ordinary else [("ordinary", ordinary), ("trials", under_trials)]
        for regime, folded in regimes:
            for n, o in enumerate(folded):
                rows[obligations].append({
                    "case_id": case_id, "regime": regime, "n": n, "rule": o.rule, "due": o.due, "deadline": o.deadline,
                    "basis": o.basis, "done_on": o.done_on, "trial": o.exemption.trial if o.exemption else None,
                    "municipality": o.municipality})
        n = 0
        for benefit, benefit_spells in timeline.benefits.items():
            for spell in benefit_spells:
                clipped = spell.clipped(timeline.closed)
                if clipped is not None:
                    rows[spells].append({"case_id": case_id, "n": n, "benefit": benefit, "start": clipped.start,
                                         "end": clipped.end, "end_reason": spell.end_reason})
                    n += 1
        for n, e in enumerate(e for e in events if e.name in COUNTED or e.permitted_by):
            data = e.data
            rows[occurrences].append({
                "case_id": case_id, "n": n, "name": e.name, "day": date.fromisoformat(data["date"]),
                "detail": data.get("kind") or data.get("benefit") or data.get("offer") or data.get("rule"),
                "reason": data.get("reason"), "permitted_by": e.permitted_by})
        return rows


    def erased(self, case_id: str, events: list[StoredEvent]) -> dict[Table, list[dict[str, Any]]]:
        """The facts of an erased case stay, so that the numbers of the periods it counted in
        stay the same, but under a random id in place of the case and the citizen: nothing here
        leads back to them. A case still open is taken as closed on the day it was erased."""
        *history, erasure = events
        if not history:
            return {}
        if not any(e.name == "case.closed" for e in history):
            history.append(StoredEvent("case.closed", {"date": erasure.data["date"], "reason": "erased"}))
        anonymous = f"{ANONYMOUS}{uuid4().hex}"
        rows = self.derive(anonymous, history)
        rows[citizens] = [{"case_id": anonymous, "citizen": anonymous}]
        return rows


class ReportingStore(CaseProjection):
    def __init__(self, engine: Engine, catalog: Catalog, group: str = "reporting",
                 today: Callable[[], date] = date.today) -> None:
        super().__init__(engine, "reporting", group, ReportingDerivation(catalog, today))
        self._fold_watch = fold_version.Watch()
        self.refresh_marks()

    def refresh_marks(self) -> int:
        """Mark for deriving again the cases derived by another fold version: on start, then
        hourly (old pods may still derive during a rolling upgrade)."""
        return self.mark_stale(fold_version.derived_by_another(responsibility)) if self._fold_watch.due() else 0

    @property
    def catalog(self) -> Catalog:
        return self.derivation.catalog
