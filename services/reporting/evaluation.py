"""A trial's evaluation numbers, computed from the reporting store's facts.

Every number is a row `{metric, group, period, municipality, rule, value, n, suppressed}`:
`group` is `trial` (the trial's municipalities) or `comparison`, `period` is `baseline` or
`trial`, `municipality` null for the whole group, `n` the number of distinct citizens behind
the value. A value over fewer than 5 citizens is suppressed (`value: null`), as Danish
statistics practice requires; those citizens still count in the group's total.

Where a fact belongs: an obligation to the municipality responsible on its due date; a spell's
end, a conversation or an exit to the one responsible on that day; a day on benefit to the one
responsible that day.
"""

from bisect import bisect_left, bisect_right
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from operator import attrgetter
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from services.reporting.store import citizens, obligations, occurrences, responsibility, spells
from shared.catalog import Catalog, Trial, add_duration

SUPPRESS_BELOW = 5
DAYS_PER_MONTH = 365.25 / 12
DID_METRICS = ("ly_avg_spell_days", "obligations_on_time_share", "exits_to_job_share",
               "exits_to_job_share_ressourceforloeb", "conversations_held_per_100_months")
DID_CELLS = (("trial", "trial"), ("trial", "baseline"), ("comparison", "trial"), ("comparison", "baseline"))
BOOTSTRAP_REPLICATES = 400


@dataclass(frozen=True)
class Row:
    metric: str
    group: str
    period: str
    municipality: str | None
    value: float | None
    n: int
    suppressed: bool
    rule: str | None = None
    of: str | None = None  # did_estimate: the metric it compares
    ci95: tuple[float, float] | None = None  # did_estimate: 95 % bootstrap interval

    def as_json(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        if self.metric != "did_estimate":
            del row["of"], row["ci95"]
        return row


@dataclass
class _Cell:
    kind: str  # count | mean | share | citizen_share | per_100_months
    numerator: float = 0
    denominator: float = 0
    who: set = field(default_factory=set)
    hit: set = field(default_factory=set)  # citizen_share: the citizens counted in the numerator
    per_citizen: dict = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))  # for the bootstrap

    def add(self, citizen: str, numerator: float = 1, denominator: float = 0) -> None:
        self.numerator += numerator
        self.denominator += denominator
        self.who.add(citizen)
        mine = self.per_citizen[citizen]
        mine[0] += numerator
        mine[1] += denominator

    def merge(self, other: "_Cell") -> None:
        self.numerator += other.numerator
        self.denominator += other.denominator
        self.who |= other.who
        self.hit |= other.hit
        for citizen, (numerator, denominator) in other.per_citizen.items():
            mine = self.per_citizen[citizen]
            mine[0] += numerator
            mine[1] += denominator

    def contributions(self) -> "np.ndarray":
        """Each citizen's (numerator, denominator), the value being their sums' ratio; sorted, so
        that the bootstrap depends on what the citizens contribute, not on who they are."""
        if self.kind == "citizen_share":
            pairs = [(float(c in self.hit), 1.0) for c in self.who]
        else:
            pairs = [(float(n), float(d)) for n, d in self.per_citizen.values()]
        return np.array(sorted(pairs), dtype=float).reshape(-1, 2)

    def value(self) -> float | None:
        if self.kind == "count":
            return self.numerator
        if self.kind == "citizen_share":
            return round(len(self.hit & self.who) / len(self.who), 4) if self.who else None
        if not self.denominator:
            return None
        if self.kind == "per_100_months":
            return round(100 * self.numerator / (self.denominator / DAYS_PER_MONTH), 4)
        return round(self.numerator / self.denominator, 4)


@dataclass
class Facts:
    """Everything the evaluation reads, per case."""

    citizen: dict[str, str]
    responsibility: dict[str, list[tuple[date, date | None, str]]]
    obligations: Sequence[Any]  # rows of the store's tables, by attribute
    spells: Sequence[Any]
    occurrences: Sequence[Any]

    @classmethod
    def load(cls, engine: Engine) -> "Facts":
        with engine.connect() as conn:
            periods: dict[str, list] = defaultdict(list)
            for r in conn.execute(select(responsibility).order_by(responsibility.c.case_id, responsibility.c.valid_from)):
                periods[r.case_id].append((r.valid_from, r.valid_to, r.municipality))
            return cls(
                citizen=dict(conn.execute(select(citizens.c.case_id, citizens.c.citizen)).all()),
                responsibility=dict(periods),
                obligations=_rows_of(conn, obligations, "due"),
                spells=_rows_of(conn, spells),
                occurrences=_rows_of(conn, occurrences, "day"),
            )

    def municipality(self, case_id: str, day: date) -> str | None:
        periods = self.responsibility.get(case_id, [])
        i = bisect_right(periods, day, key=lambda p: p[0])
        if not i:
            return None
        start, end, municipality = periods[i - 1]
        return municipality if end is None or day < end else None

    def days_by_municipality(self, case_id: str, start: date, end: date) -> dict[str, int]:
        """Days of [start, end] per municipality responsible on them."""
        days: dict[str, int] = defaultdict(int)
        for valid_from, valid_to, municipality in self.responsibility.get(case_id, []):
            lo, hi = max(start, valid_from), min(end, (valid_to - timedelta(days=1)) if valid_to else end)
            if lo <= hi:
                days[municipality] += (hi - lo).days + 1
        return days


def _rows_of(conn, table, order_by: str | None = None) -> list:
    """The table's rows as named tuples (attribute access at C speed), in date order if asked."""
    row = namedtuple(table.name, [c.name for c in table.columns])
    query = select(table).order_by(table.c[order_by]) if order_by else select(table)
    return [row._make(r) for r in conn.execute(query)]


def _dated(rows: Sequence[Any], field: str, lo: date, hi: date) -> Sequence[Any]:
    """The rows (in `field` order) dated within [lo, hi]."""
    return rows[bisect_left(rows, lo, key=attrgetter(field)):bisect_right(rows, hi, key=attrgetter(field))]


def periods_for(trial: Trial, start: date | None, end: date | None, today: date) -> dict[str, tuple[date, date]]:
    """The evaluated period (default: the trial's own, up to today) and the baseline: as long,
    just before the trial starts."""
    lo = start or trial.period.start
    hi = end or min(trial.period.end or today, today)
    if hi < lo:
        raise ValueError("the period ends before it starts")
    baseline_end = trial.period.start - timedelta(days=1)
    return {"baseline": (baseline_end - (hi - lo), baseline_end), "trial": (lo, hi)}


def evaluate(facts: Facts, catalog: Catalog, trial: Trial, periods: dict[str, tuple[date, date]],
             comparison: Iterable[str]) -> list[Row]:
    groups = {"trial": set(trial.municipalities), "comparison": set(comparison)}
    rows: list[Row] = []
    totals: dict[tuple[str, str], dict[tuple[str, str | None], _Cell]] = {}
    for group, members in groups.items():
        for period, (lo, hi) in periods.items():
            cells = _cells(facts, catalog, trial, members, lo, hi)
            more, totals[(group, period)] = _rows(cells, group, period, catalog)
            rows += more
    return rows + _differences_in_differences(totals)


METRICS = ("obligations_required_ordinary", "obligations_required", "obligations_waived", "caseworker_hours_freed",
           "obligations_on_time_share", "ly_spells_ended", "ly_avg_spell_days", "ly_over_18m_at_start",
           "ly_over_18m_at_end", "conversations_held_per_100_months", "exits_to_job_share",
           "exits_to_job_share_ressourceforloeb", "permitted_actions")


def series(facts: Facts, catalog: Catalog, trial: Trial, metric: str, start: date, end: date,
           comparison: Iterable[str]) -> list[Row]:
    """The metric month by month (each month its own period, named YYYY-MM), for the whole
    trial group and the whole comparison group; rules summed."""
    rows = []
    groups = {"trial": set(trial.municipalities), "comparison": set(comparison)}
    month = start.replace(day=1)
    while month <= end:
        last = add_duration(month, "1m") - timedelta(days=1)
        for group, members in groups.items():
            total = _Cell("count")
            cells = _cells(facts, catalog, trial, members, max(month, start), min(last, end))
            by_metric: dict[tuple[str, str | None], dict[str, _Cell]] = defaultdict(dict)
            for (name, rule, m), c in cells.items():
                by_metric[(name, rule)][m] = c
            _waived(by_metric, catalog)
            parts = [c for (name, _), per in by_metric.items() if name == metric for c in per.values()]
            if parts:
                total = _Cell(parts[0].kind)
                for c in parts:
                    total.merge(c)
            rows.append(_row(metric, group, month.strftime("%Y-%m"), None, None, total))
        month = add_duration(month, "1m")
    return rows


def comparison_default(facts: Facts, trial: Trial) -> list[str]:
    """All municipalities outside the trial that have data."""
    seen = {m for periods in facts.responsibility.values() for _, _, m in periods}
    return sorted(seen - set(trial.municipalities))


Key = tuple[str, str | None, str]  # metric, rule, municipality


def _cells(facts: Facts, catalog: Catalog, trial: Trial, members: set[str], lo: date, hi: date) -> dict[Key, _Cell]:
    cells: dict[Key, _Cell] = {}

    def cell(metric: str, kind: str, municipality: str, rule: str | None = None) -> _Cell:
        found = cells.get((metric, rule, municipality))
        if found is None:
            found = cells[(metric, rule, municipality)] = _Cell(kind)
        return found

    for o in _dated(facts.obligations, "due", lo, hi):
        if o.municipality not in members:
            continue
        who, m = facts.citizen.get(o.case_id, o.case_id), o.municipality
        if o.regime == "ordinary":
            cell("obligations_required_ordinary", "count", m, o.rule).add(who)
        elif o.basis == "required":
            cell("obligations_required", "count", m, o.rule).add(who)
            on_time = o.done_on is not None and o.done_on <= o.deadline
            cell("obligations_on_time_share", "share", m).add(who, int(on_time), 1)
    for s in facts.spells:
        who = facts.citizen.get(s.case_id, s.case_id)
        end = s.end or hi
        for m, days in facts.days_by_municipality(s.case_id, max(s.start, lo), min(end, hi)).items():
            if m in members:
                cell("conversations_held_per_100_months", "per_100_months", m).add(who, 0, days)
                cell("exits_to_job_share", "citizen_share", m).add(who)
                if s.benefit == "ressourceforloeb":
                    cell("exits_to_job_share_ressourceforloeb", "citizen_share", m).add(who)
        if s.benefit != "ledighedsydelse":
            continue
        if s.end is not None and lo <= s.end <= hi and (m := facts.municipality(s.case_id, s.end)) in members:
            cell("ly_spells_ended", "count", m).add(who)
            cell("ly_avg_spell_days", "mean", m).add(who, (s.end - s.start).days + 1, 1)
        for metric, day in (("ly_over_18m_at_start", lo), ("ly_over_18m_at_end", hi)):
            running = s.start <= day and (s.end is None or day <= s.end)
            if running and s.start < add_duration(day, "18m", sign=-1):
                if (m := facts.municipality(s.case_id, day)) in members:
                    cell(metric, "count", m).add(who)
    _exits_and_talks(facts, cells, members, lo, hi, trial)
    return cells


def _exits_and_talks(facts: Facts, cells: dict[Key, _Cell], members: set[str], lo: date, hi: date, trial: Trial) -> None:
    for o in _dated(facts.occurrences, "day", lo, hi):
        m = facts.municipality(o.case_id, o.day)
        if m not in members:
            continue
        who = facts.citizen.get(o.case_id, o.case_id)
        if o.name == "conversation.held" and ("conversations_held_per_100_months", None, m) in cells:
            cells[("conversations_held_per_100_months", None, m)].add(who, 1, 0)
        if o.name in ("benefit.ended", "case.closed") and o.reason == "job":
            metrics = ["exits_to_job_share"]
            if o.name == "benefit.ended" and o.detail == "ressourceforloeb":
                metrics.append("exits_to_job_share_ressourceforloeb")
            for metric in metrics:
                if (metric, None, m) in cells:
                    cells[(metric, None, m)].hit.add(who)
        if o.permitted_by == trial.id:
            cells.setdefault(("permitted_actions", None, m), _Cell("count")).add(who)


def _rows(cells: dict[Key, _Cell], group: str, period: str, catalog: Catalog
          ) -> tuple[list[Row], dict[tuple[str, str | None], _Cell]]:
    by_metric: dict[tuple[str, str | None], dict[str, _Cell]] = defaultdict(dict)
    for (metric, rule, m), c in cells.items():
        by_metric[(metric, rule)][m] = c
    _waived(by_metric, catalog)
    rows, totals = [], {}
    for (metric, rule), per_municipality in sorted(by_metric.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        total = totals[(metric, rule)] = _Cell(next(iter(per_municipality.values())).kind)
        for m, c in sorted(per_municipality.items()):
            total.merge(c)
            rows.append(_row(metric, group, period, m, rule, c))
        rows.append(_row(metric, group, period, None, rule, total))
    return rows, totals


def _differences_in_differences(totals: dict[tuple[str, str], dict[tuple[str, str | None], _Cell]]) -> list[Row]:
    """(trial group: trial - baseline) - (comparison group: trial - baseline), for each metric
    that is a rate or share over citizens, with a 95 % interval from resampling the citizens of
    each of the four cells (percentile bootstrap, a fixed seed so answers repeat)."""
    rows = []
    for metric in DID_METRICS:
        cells = [totals.get(key, {}).get((metric, None)) for key in DID_CELLS]
        if any(c is None for c in cells):
            continue
        n = min(len(c.who) for c in cells)
        estimate = _did([c.value() for c in cells])
        if n < SUPPRESS_BELOW or estimate is None:
            rows.append(Row("did_estimate", "trial", "trial", None, None, n, True, of=metric))
            continue
        rng = np.random.default_rng(2016)
        replicates = np.zeros(BOOTSTRAP_REPLICATES)
        for sign, cell in zip((1, -1, -1, 1), cells):
            values = cell.contributions()
            draws = rng.integers(0, len(values), (BOOTSTRAP_REPLICATES, len(values)))
            sums = values[draws].sum(axis=1)  # (replicates, 2)
            with np.errstate(divide="ignore", invalid="ignore"):
                replicates += sign * sums[:, 0] / sums[:, 1] * _scale(cell)
        low, high = np.nanpercentile(replicates, [2.5, 97.5])
        rows.append(Row("did_estimate", "trial", "trial", None, round(estimate, 4), n, False, of=metric,
                        ci95=(round(float(low), 4), round(float(high), 4))))
    return rows


def _did(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    trial_now, trial_before, comparison_now, comparison_before = values
    return (trial_now - trial_before) - (comparison_now - comparison_before)


def _scale(cell: _Cell) -> float:
    return 100 * DAYS_PER_MONTH if cell.kind == "per_100_months" else 1.0


def _waived(by_metric: dict[tuple[str, str | None], dict[str, _Cell]], catalog: Catalog) -> None:
    """obligations_waived = ordinary - required, per rule and municipality; and the caseworker
    hours that frees, from the rule catalog's minutes per obligation."""
    hours: dict[str, _Cell] = {}
    for (metric, rule), ordinary in list(by_metric.items()):
        if metric != "obligations_required_ordinary":
            continue
        required = by_metric.get(("obligations_required", rule), {})
        minutes = catalog.rules[rule].minutes_per_obligation or 0
        for m, c in ordinary.items():
            waived = c.numerator - (required[m].numerator if m in required else 0)
            cell = _Cell("count", waived, 0, set(c.who))
            by_metric[("obligations_waived", rule)][m] = cell
            hours.setdefault(m, _Cell("count")).merge(_Cell("count", round(waived * minutes / 60, 2), 0, set(c.who)))
    for m, c in hours.items():
        by_metric[("caseworker_hours_freed", None)][m] = c


def _row(metric: str, group: str, period: str, municipality: str | None, rule: str | None, c: _Cell) -> Row:
    n = len(c.who)
    suppressed = n < SUPPRESS_BELOW
    return Row(metric, group, period, municipality, None if suppressed else c.value(), n, suppressed, rule)
