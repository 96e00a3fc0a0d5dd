"""A trial's evaluation numbers, computed from the reporting store's facts (`facts.Facts`).

Every number is a row `{metric, group, period, municipality, rule, value, n, suppressed}`:
`group` is `trial` (the trial's municipalities) or `comparison`, `period` is `baseline` or
`trial`, `municipality` null for the whole group, `n` the number of distinct citizens behind
the value. A value over 1-4 citizens is suppressed (`value` and `n` null), as Danish
statistics practice requires, and so are others where needed so that none can be derived
from the rest (`_protected`); those citizens still count in the group's total.

Attribution: the obligation metrics count the rules the trial changes, and the waived ones
(and the hours they free) only those this trial's own effect waives or suspends; one only
another trial waives is required under this trial's effects. Other trials in the same
municipalities and time are context (`other_trials`), never credited to it; one whose effects
change the same obligations shares them (SHARED_RULE: credited to each, named on each row).

Where a fact belongs: an obligation to the municipality responsible on its due date; a spell's
end, a conversation or an exit to the one responsible on that day; a day on benefit to the one
responsible that day.

How: for a period, each metric's facts become contributions (municipality, citizen, numerator,
denominator, rule). Their cells, per municipality and rule, are computed once for all the
municipalities asked about: sums by bincount, distinct citizens from sorted keys. A group's
totals then count a citizen in several of its municipalities once. All of it part by part of
the facts (`FactParts`: a citizen is in one part), each part's tallies remembered by the part,
then added up: after a change only the changed cases' parts are tallied again, each by its
earlier tallies less those of its changed citizens then, plus theirs now (`_tallied_again`).
"""

import os
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from services.reporting.facts import NONE, OPEN, Columns, FactParts, Facts
from shared.catalog import Catalog, Trial, add_duration
from shared.dates import EARLIEST

SUPPRESS_BELOW = 5
DAYS_PER_MONTH = 365.25 / 12
DID_METRICS = ("ly_avg_spell_days", "obligations_on_time_share", "exits_to_job_share",
               "exits_to_job_share_ressourceforloeb", "conversations_held_per_100_months")
DID_CELLS = (("trial", "trial"), ("trial", "baseline"), ("comparison", "trial"), ("comparison", "baseline"))
BOOTSTRAP_REPLICATES = 400
RESAMPLED_UP_TO = 2000  # citizens up to which the bootstrap resamples them one by one
METRICS = ("obligations_required_ordinary", "obligations_required", "obligations_waived", "caseworker_hours_freed",
           "obligations_on_time_share", "ly_spells_ended", "ly_avg_spell_days", "ly_over_18m_at_start",
           "ly_over_18m_at_end", "conversations_held_per_100_months", "exits_to_job_share",
           "exits_to_job_share_ressourceforloeb", "permitted_actions")
OBLIGATION_COUNTS = ("obligations_required_ordinary", "obligations_required", "obligations_waived")
WHO = ("municipality", "citizen")  # the columns a count needs


def _tallying() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1)


# parts are tallied side by side: numpy lets go of the interpreter in its loops over a part's
# columns (a first answer at 1,000,000 cases in about two thirds of the time on 2 cores). A forked
# child has none of its parent's threads (mutmut forks a worker per mutant): a pool of its own.
TALLYING = _tallying()
os.register_at_fork(after_in_child=lambda: globals().update(TALLYING=_tallying()))


@dataclass(frozen=True)
class Row:
    metric: str
    group: str
    period: str
    municipality: str | None
    value: float | None
    n: int | None  # None where suppressed
    suppressed: bool
    rule: str | None = None
    of: str | None = None  # did_estimate: the metric it compares
    ci95: tuple[float, float] | None = None  # did_estimate: 95 % bootstrap interval
    # context, never credited to this trial: the other trials active in the row's municipality
    # (a group total: any of the group's; a did_estimate: any compared) during its period
    other_trials_active: tuple[str, ...] = ()
    # SHARED_RULE: the other trials whose effects change some of the row's obligations too, each
    # with how many (a group total of waived obligations or hours freed; else None, as where
    # the number could reveal fewer than 5 citizens)
    shared_with: tuple[tuple[str, int | None], ...] = ()

    def as_json(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        if self.metric != "did_estimate":
            del row["of"], row["ci95"]
        row["other_trials_active"] = list(self.other_trials_active)
        row["shared_with"] = dict(self.shared_with)
        return row


@dataclass
class Cell:
    """One number before suppression: sums over its facts, and the distinct citizens behind them."""

    kind: str  # count | mean | share | citizen_share | per_100_months
    numerator: float
    denominator: float
    n: int
    hits: int = 0  # citizen_share: of the n citizens, those counted
    spread: "Spread | None" = None  # a group total of a rate or share: its citizens, for the bootstrap

    @staticmethod
    def total(cells: list["Cell"]) -> "Cell":
        """Cells of different citizens added up (one object made, however many: parts' totals)."""
        if len(cells) == 1:
            return cells[0]
        spreads = [c.spread for c in cells if c.spread is not None]
        return replace(cells[0], numerator=sum(c.numerator for c in cells), denominator=sum(c.denominator for c in cells),
                       n=sum(c.n for c in cells), hits=sum(c.hits for c in cells),
                       spread=Spread.total(spreads) if spreads else None)

    def less(self, other: "Cell | None") -> "Cell":
        """This cell without the contributions of some of its citizens (`other`: theirs; None, or
        without a spread: of none). A cell left with no one is one of nothing, as a tally gives it."""
        if other is None:
            return self
        if self.n == other.n:
            return Cell(self.kind, 0, 0, 0)
        return Cell(self.kind, self.numerator - other.numerator, self.denominator - other.denominator,
                    self.n - other.n, self.hits - other.hits,
                    self.spread.less(other.spread) if other.spread else self.spread)

    def value(self) -> float | None:
        if self.kind == "count":
            return round(self.numerator, 2) if isinstance(self.numerator, float) else self.numerator
        if self.kind == "citizen_share":
            return round(self.hits / self.n, 4) if self.n else None
        if not self.denominator:
            return None
        if self.kind == "per_100_months":
            return round(100 * self.numerator / (self.denominator / DAYS_PER_MONTH), 4)
        return round(self.numerator / self.denominator, 4)


@dataclass(frozen=True)
class Spread:
    """What the bootstrap needs of the citizens behind a rate or share, each a (numerator,
    denominator): their number, sums and sums of products (the mean and covariance of the
    normal limit), and up to RESAMPLED_UP_TO citizens the pairs themselves. Adds up across
    parts of the facts without going back to the pairs."""

    n: int
    sums: np.ndarray  # (numerator, denominator)
    products: np.ndarray  # 2 x 2
    pairs: np.ndarray | None  # None past RESAMPLED_UP_TO citizens

    @classmethod
    def of(cls, pairs: np.ndarray) -> "Spread":
        return cls(len(pairs), pairs.sum(axis=0), pairs.T @ pairs, pairs if len(pairs) <= RESAMPLED_UP_TO else None)

    @staticmethod
    def total(spreads: list["Spread"]) -> "Spread":
        """Spreads of different citizens added up."""
        n = sum(s.n for s in spreads)
        pairs = np.concatenate([s.pairs for s in spreads]) if n <= RESAMPLED_UP_TO else None
        return Spread(n, sum(s.sums for s in spreads), sum(s.products for s in spreads), pairs)

    def less(self, other: "Spread") -> "Spread":
        """This spread without some of its citizens (`other`: theirs); Recount where the citizens
        left are few enough to be resampled one by one, but were too many to keep their pairs."""
        n = self.n - other.n
        pairs = None
        if n <= RESAMPLED_UP_TO:
            if self.pairs is None:
                raise Recount
            # pairs are resampled in order of what they are (`resampled_sums`): alike ones are one
            values, at = np.unique(np.concatenate((self.pairs, other.pairs)), axis=0, return_inverse=True)
            # every value is one of these citizens': the first count is as long as the values
            kept = np.bincount(at[:len(self.pairs)]) - np.bincount(at[len(self.pairs):], minlength=len(values))
            pairs = np.repeat(values, kept, axis=0)
        return Spread(n, self.sums - other.sums, self.products - other.products, pairs)


class Recount(Exception):
    """An answer that cannot be updated by its changed citizens (`Spread.less`): computed again."""


@dataclass
class Cells:
    """A metric's cells as columns, one entry per (rule, municipality) with facts: the parts of
    the facts' cells added up as arrays, made `Cell`s only for the rows published."""

    kind: str
    rule: np.ndarray  # NONE for the metrics not by rule
    place: np.ndarray
    numerator: np.ndarray  # whole numbers for a count of facts
    denominator: np.ndarray
    n: np.ndarray
    hits: np.ndarray  # citizen_share

    def __len__(self) -> int:
        return len(self.place)

    def where(self, mask: np.ndarray) -> "Cells":
        return Cells(self.kind, *(column[mask] for column in self._columns()))

    def cell(self, i: int) -> Cell:
        return Cell(self.kind, self.numerator[i].item(), float(self.denominator[i]), int(self.n[i]), int(self.hits[i]))

    def _columns(self) -> tuple[np.ndarray, ...]:
        return self.rule, self.place, self.numerator, self.denominator, self.n, self.hits

    def less(self, other: "Cells") -> "Cells":
        """These cells without the contributions of some of their citizens (`other`: theirs): the
        cells left with citizens."""
        left = Cells.added([self, replace(other, numerator=-other.numerator, denominator=-other.denominator,
                                          n=-other.n, hits=-other.hits)])
        return left.where(left.n > 0)

    @staticmethod
    def added(parts: list["Cells"]) -> "Cells":
        """The parts' cells added up: a citizen is in one part, so distinct citizens add up too."""
        columns = [np.concatenate(column) for column in zip(*(c._columns() for c in parts))]
        rule, place = columns[0], columns[1]
        width = int(place.max(initial=0)) + 1
        keys, at = np.unique((rule + 1) * width + place, return_inverse=True)
        return Cells(parts[0].kind, keys // width - 1, keys % width,
                     *(np.bincount(at, column, len(keys)).astype(column.dtype) for column in columns[2:]))


@dataclass
class Contributions:
    """A metric's facts in one period, all municipalities: a row per fact."""

    kind: str
    municipality: np.ndarray
    citizen: np.ndarray
    numerator: np.ndarray | None = None  # None: 1 each (a count)
    denominator: np.ndarray | None = None  # None: 0 each
    rule: np.ndarray | None = None  # for the metrics given by rule
    hits: tuple[np.ndarray, np.ndarray] | None = None  # citizen_share: (municipality, citizen) counted


@dataclass
class Tally:
    """A metric in one period, per municipality (of those asked about): its cells, and what a
    group's totals are made of."""

    kind: str
    by_rule: bool
    cells: Cells
    keys: np.ndarray  # distinct (rule, municipality, citizen), sorted, as rule * places * citizens + ...
    key_place: np.ndarray  # the municipality of each key
    hit_keys: np.ndarray | None  # citizen_share: distinct (municipality, citizen) counted in a cell
    rows: tuple[np.ndarray, ...]  # municipality, citizen, numerator, denominator per fact
    places: int
    citizens: int


@dataclass
class GroupTally:
    """A metric in one group and period."""

    cells: Cells
    totals: dict[int, Cell]  # rule -> the group's total
    overall: Cell  # the group's total over all rules


class PeriodError(ValueError):
    """A period that cannot be evaluated: (query parameter, reason) for each thing wrong."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in errors))
        self.errors = errors


def periods_for(trial: Trial, start: date | None, end: date | None, today: date) -> dict[str, tuple[date, date]]:
    """The evaluated period (default: the trial's own, up to today) and the baseline: as long,
    just before the trial starts. The period must lie within the trial's own, so that the
    baseline never overlaps the trial, and not after today."""
    last = min(trial.period.end or today, today)
    lo, hi = start or trial.period.start, end or last
    errors = []
    if lo < trial.period.start:
        errors.append(("from", f"before the trial starts on {trial.period.start}: the baseline, just before the "
                               f"trial, would overlap the period evaluated"))
    if hi > last:
        errors.append(("to", f"after {last}, the last day of the trial with data (its end, or today)"))
    if hi < lo:
        errors.append(("to", "the period ends before it starts"))
    baseline_end = trial.period.start - timedelta(days=1)
    if hi - lo > baseline_end - EARLIEST:
        errors.append(("to", f"the baseline, as long as the period and just before the trial, would begin before "
                             f"{EARLIEST}: ask for a shorter period"))
    if errors:
        raise PeriodError(errors)
    return {"baseline": (baseline_end - (hi - lo), baseline_end), "trial": (lo, hi)}


OBLIGATION_EFFECTS = ("waive", "modify", "suspend")


def other_trials(catalog: Catalog, trial: Trial, municipality: str, first: date, last: date,
                 contaminating: bool = False) -> list[str]:
    """The other trials active in the municipality at some time in [first, last]; with
    `contaminating`, only those that touch the same rules as this trial or change obligations
    (the numbers compared are made of them)."""
    rules = {e.rule for e in trial.effects}
    found = []
    for other in catalog.trials.values():
        if other.id == trial.id or municipality not in other.municipalities:
            continue
        if other.period.start > last or (other.period.end is not None and other.period.end < first):
            continue
        if contaminating and not any(e.rule in rules or e.effect in OBLIGATION_EFFECTS for e in other.effects):
            continue
        found.append(other.id)
    return sorted(found, key=_trial_order)


def _trial_order(trial: str) -> int:
    return int(trial[1:]) if trial[1:].isdigit() else 0


COMPARISON_RULE = ("the municipalities with data outside the trial in which no other trial that touches the "
                   "same rules, or changes obligations, is active during the periods compared; of those, the ones "
                   "similar in size to the trial's (citizens on a benefit during the periods compared, from half "
                   "the smallest to twice the largest trial municipality's), where any is")


def comparison_default(facts: FactParts, catalog: Catalog, trial: Trial, periods: dict[str, tuple[date, date]]
                       ) -> tuple[list[str], dict[str, list[str]], dict[str, Any]]:
    """The default comparison group (COMPARISON_RULE); those left out with the trials why; and
    the sizes compared: citizens per municipality, the range, and those left out by size."""
    first, last = min(lo for lo, _ in periods.values()), max(hi for _, hi in periods.values())
    outside = sorted(facts.municipalities() - set(trial.municipalities))
    excluded = {m: found for m in outside if (found := other_trials(catalog, trial, m, first, last, True))}
    clean = [m for m in outside if m not in excluded]
    citizens: Counter[str] = Counter()
    for found in _each_part(facts, ("citizens on benefit", first, last), None,
                            lambda p: _citizens_on_benefit(p, first, last),
                            lambda then, gone, now: Counter(then) - Counter(gone) + Counter(now)):
        citizens.update(found)
    sizes = [citizens[m] for m in trial.municipalities if citizens.get(m)]
    low, high = (min(sizes) / 2, max(sizes) * 2) if sizes else (0, float("inf"))
    similar = [m for m in clean if low <= citizens.get(m, 0) <= high]
    size = {"citizens": {m: _discreet(citizens[m]) for m in [*trial.municipalities, *clean] if m in citizens},
            "range": [low if _discreet(min(sizes)) else None, high if _discreet(max(sizes)) else None]
            if sizes else None,
            "left_out": [m for m in clean if m not in similar] if similar else []}
    return similar or clean, excluded, size


def _discreet(citizens: int) -> int | None:
    """A count of citizens as it may be published: none under SUPPRESS_BELOW but 0."""
    return citizens if citizens == 0 or citizens >= SUPPRESS_BELOW else None


def _citizens_on_benefit(facts: Facts, first: date, last: date) -> dict[str, int]:
    """Distinct citizens on a benefit at some time in [first, last], per municipality responsible."""
    s = facts.rows("segments")
    if not s:
        return {}
    during = s.where((s["lo"] <= last.toordinal()) & (s["hi"] >= first.toordinal()), *WHO)
    keys = _distinct(during["municipality"].astype(np.int64) * facts.citizens + during["citizen"])
    counts = np.bincount(keys // facts.citizens, minlength=facts.places)
    names = facts.codes["municipality"].names
    return {names[m]: int(counts[m]) for m in np.flatnonzero(counts)}


def evaluate(facts: FactParts, catalog: Catalog, trial: Trial, periods: dict[str, tuple[date, date]],
             comparison: Iterable[str]) -> list[Row]:
    comparison = list(comparison)
    key = ("evaluate", trial.id, tuple(periods.items()), tuple(comparison))
    parts = _each_part(facts, key, catalog, lambda p: _tallied(p, catalog, trial, periods, comparison),
                       _tallied_again)
    shared = {period: _shared_added([p[1][period] for p in parts]) for period in periods}
    rows: list[Row] = []
    totals: dict[tuple[str, str], dict[str, Cell]] = {}
    for group in ("trial", "comparison"):
        for period in periods:
            grouped = _combined([p[0][(group, period)] for p in parts])
            rows += _rows(grouped, group, period, facts) + _zeros(grouped, facts, trial, group, period)
            totals[(group, period)] = {metric: t.totals[NONE] for metric, t in grouped.items() if NONE in t.totals}
    rows = _protected(rows)
    for r in rows:  # a total hidden to protect a cell is hidden in the difference-in-differences too
        if r.suppressed and r.municipality is None and r.rule is None:
            totals[(r.group, r.period)].pop(r.metric, None)
    places = {"trial": list(trial.municipalities), "comparison": comparison}
    context = _Context(catalog, trial)
    rows = [_with_shared(replace(r, other_trials_active=context.active(
        [r.municipality] if r.municipality else places[r.group], *periods[r.period])), shared[r.period]) for r in rows]
    everywhere = context.active([*places["trial"], *places["comparison"]], min(lo for lo, _ in periods.values()),
                                max(hi for _, hi in periods.values()))
    return rows + [replace(r, other_trials_active=everywhere) for r in _differences_in_differences(totals)]


def _each_part(facts: FactParts, key: tuple, of: Any, compute: Callable[[Facts], Any],
               update: Callable | None = None) -> list:
    """`compute` of each part of the facts, in order, as the part remembers it or updates it
    (`Facts.answer`); the parts that must compute it side by side when several must (one alone
    is computed here: threads taking turns would cost it more than they save)."""
    missing = [part for part in facts.parts if not part.knows(key, of)]
    if len(missing) > 1:
        for _ in TALLYING.map(lambda part: part.answer(key, of, compute, update), missing):
            pass
    return [part.answer(key, of, compute, update) for part in facts.parts]


def _tallied(facts: Facts, catalog: Catalog, trial: Trial, periods: dict[str, tuple[date, date]],
             comparison: list[str]) -> tuple[dict[tuple[str, str], dict[str, GroupTally]], dict[str, "Shared"]]:
    """In one part of the facts: per (group, period) the metrics' tallies, and per period what
    the trial's obligations share with other trials."""
    groups = {"trial": _members(facts, trial.municipalities), "comparison": _members(facts, comparison)}
    asked = groups["trial"] | groups["comparison"]
    obligations = {period: _obligations(facts, trial, lo.toordinal(), hi.toordinal()) for period, (lo, hi) in periods.items()}
    tallies = {period: _tallies(_contributions(facts, catalog, trial, lo, hi, METRICS, obligations[period]), asked, facts)
               for period, (lo, hi) in periods.items()}
    return ({(group, period): _grouped(tallies[period], members) for group, members in groups.items() for period in periods},
            {period: _shared(facts, catalog, trial, obligations[period], groups) for period in periods})


def _tallied_again(then: tuple, gone: tuple, now: tuple) -> tuple | None:
    """A part's `_tallied` after some of its citizens changed: what it was (`then`), less what
    they contributed then (`gone`), plus what they contribute now (`now`); None where that
    cannot be done (`Recount`)."""
    try:
        groups = {key: _combined([_less(tallies, gone[0][key]), now[0][key]]) for key, tallies in then[0].items()}
    except Recount:
        return None
    return groups, {period: _shared_sum([shared, gone[1][period], now[1][period]], (1, -1, 1))
                    for period, shared in then[1].items()}


def _less(tallies: dict[str, GroupTally], gone: dict[str, GroupTally]) -> dict[str, GroupTally]:
    """A group's tallies without the contributions of some of its citizens (`gone`: theirs)."""
    left = {}
    for metric, tally in tallies.items():
        theirs = gone.get(metric)
        if theirs is None:
            left[metric] = tally
            continue
        cells = tally.cells.less(theirs.cells)
        if len(cells):
            totals = {r: tally.totals[r].less(theirs.totals.get(r)) for r in np.unique(cells.rule).tolist()}
            left[metric] = GroupTally(cells, totals, tally.overall.less(theirs.overall))
    return left


def _combined(parts: list[dict[str, GroupTally]]) -> dict[str, GroupTally]:
    """A group's tallies in one period, of each part, added up: a citizen is in one part, so its
    distinct citizens add up too."""
    combined = {}
    for metric in sorted({metric for part in parts for metric in part}):
        tallies = [part[metric] for part in parts if metric in part]
        combined[metric] = GroupTally(Cells.added([t.cells for t in tallies]), _cells_added([t.totals for t in tallies]),
                                      _cells_added([{NONE: t.overall} for t in tallies])[NONE])
    return combined


def _cells_added(parts: list[dict[Any, Cell]]) -> dict[Any, Cell]:
    by_key: dict[Any, list[Cell]] = {}
    for cells in parts:
        for key, cell in cells.items():
            by_key.setdefault(key, []).append(cell)
    return {key: Cell.total(cells) for key, cells in by_key.items()}


SHARED_RULE = ("an obligation that the effects of several trials change (the same rule, due where and when each "
               "applies) is shared: it is credited to each of them, as each one's own effect, and each row that "
               "counts it names the others in shared_with, with how many of the row's obligations for a group's "
               "waived obligations and hours freed")
NOT_PERMITS = ("waive", "modify", "suspend")


def sharing(catalog: Catalog, trial: Trial) -> list[Trial]:
    """The other trials with an effect (not a permission) on a rule this trial changes."""
    rules = {e.rule for e in trial.effects if e.effect != "permit"}
    found = {t.id: t for rule in rules for t in catalog.trials_touching(rule)
             if t.id != trial.id and any(e.rule in rules and e.effect != "permit" for e in t.effects)}
    return [found[t] for t in sorted(found, key=_trial_order)]


@dataclass
class Shared:
    """In one period, per row key (metric, group, municipality or None, rule or None): the other
    trials that change some of its obligations too, each with how many; per group total of
    waived obligations (by rule) and hours freed: for each of them (the obligations shared,
    their citizens, the citizens of the rest). Sums over citizens, so that parts add up."""

    names: dict[tuple, dict[str, int]]
    counts: dict[tuple, dict[str, tuple[int, int, int]]]


def _shared(facts: Facts, catalog: Catalog, trial: Trial, obligations: tuple[Columns, Columns, Columns, Columns],
            groups: dict[str, np.ndarray]) -> Shared:
    """What the trial's obligations in a period (`_obligations`) share with other trials."""
    shared = Shared({}, {})
    others = sharing(catalog, trial)
    if not others:
        return shared
    ordinary, done, required, waived = obligations
    places, rules = facts.codes["municipality"].names, facts.codes["rule"].names
    tables = (("obligations_required_ordinary", ordinary), ("obligations_required", required),
              ("obligations_on_time_share", done), ("obligations_waived", waived))
    for other in others:
        where = _members(facts, other.municipalities)
        for metric, rows in tables:
            # for names only, the other trial's municipalities suffice (the fold names it only there)
            if metric != "obligations_waived":
                rows = rows.where(where[rows["municipality"]], "municipality", "rule", "trial", "due")
            hit = covers(facts, other, rows, NOT_PERMITS)
            for group, members in groups.items():
                in_group = members[rows["municipality"]]
                if metric == "obligations_waived":  # of every rule: another part may hold its hits
                    for r in np.unique(rows["rule"][in_group]).tolist():
                        of_rule = in_group & (rows["rule"] == r)
                        shared.counts.setdefault((metric, group, rules[r]), {})[other.id] = _split(rows, of_rule, hit)
                    shared.counts.setdefault(("caseworker_hours_freed", group, None), {})[other.id] = \
                        _split(rows, in_group, hit)
                if not (hit & in_group).any():
                    continue
                by_rule = metric != "obligations_on_time_share"
                cells, sizes = np.unique(rows["municipality"][hit & in_group].astype(np.int64) * len(rules)
                                         + rows["rule"][hit & in_group], return_counts=True)
                for m, r, size in zip((cells // len(rules)).tolist(), (cells % len(rules)).tolist(), sizes.tolist()):
                    keys = [(metric, group, place, rules[r] if by_rule else None) for place in (places[m], None)]
                    if metric == "obligations_waived":
                        keys += [("caseworker_hours_freed", group, place, None) for place in (places[m], None)]
                    for key in keys:
                        shared.names.setdefault(key, Counter())[other.id] += size
    return shared


def _shared_added(parts: list[Shared]) -> Shared:
    """What the parts' obligations share, added up (a citizen is in one part); of the trials
    sharing, those that share some."""
    added = _shared_sum(parts, (1,) * len(parts))
    return Shared({key: found for key, by_other in added.names.items()
                   if (found := {other: size for other, size in by_other.items() if size > 0})},
                  {key: found for key, by_other in added.counts.items()
                   if (found := {other: split for other, split in by_other.items() if split[0]})})


def _shared_sum(parts: list[Shared], signs: tuple[int, ...]) -> Shared:
    """The parts' sharing added up, each part's times its sign (-1: taken away)."""
    added = Shared({}, {})
    for part, sign in zip(parts, signs):
        for key, by_other in part.names.items():
            into = added.names.setdefault(key, Counter())
            for other, size in by_other.items():
                into[other] += sign * size
        for key, by_other in part.counts.items():
            into = added.counts.setdefault(key, {})
            for other, split in by_other.items():
                into[other] = tuple(a + sign * b for a, b in zip(into.get(other, (0, 0, 0)), split))
    return added


def _split(rows: Columns, selected: np.ndarray, hit: np.ndarray) -> tuple[int, int, int]:
    """Of the selected obligations, (those hit, their distinct citizens, the distinct citizens of the rest)."""
    return (int((selected & hit).sum()), len(np.unique(rows["citizen"][selected & hit])),
            len(np.unique(rows["citizen"][selected & ~hit])))


def _with_shared(r: Row, shared: Shared) -> Row:
    """The row with the other trials it shares obligations with; a number only where it reveals
    no cell of 1-4 citizens: of a published group total, the shared ones of 5 citizens or more
    and the rest of none or 5 or more (for hours freed: so for each rule's waived too)."""
    found = shared.names.get((r.metric, r.group, r.municipality, r.rule))
    if not found:
        return r

    def publishable(split: tuple[int, int, int] | None) -> bool:
        return split is not None and split[1] >= SUPPRESS_BELOW and not 0 < split[2] < SUPPRESS_BELOW

    def number(other: str) -> int | None:
        if r.suppressed or r.municipality is not None:
            return None
        split = shared.counts.get((r.metric, r.group, r.rule), {}).get(other)
        if r.metric == "caseworker_hours_freed" and not all(
                publishable(by_other.get(other)) for (metric, group, _), by_other in shared.counts.items()
                if metric == "obligations_waived" and group == r.group and other in by_other):
            return None
        return split[0] if publishable(split) else None

    return replace(r, shared_with=tuple((other, number(other)) for other in sorted(found, key=_trial_order)))


class _Context:
    """The other trials active in some municipalities during a period (`other_trials`), remembered."""

    def __init__(self, catalog: Catalog, trial: Trial) -> None:
        self.catalog, self.trial = catalog, trial
        self.found: dict[tuple[str, date, date], list[str]] = {}

    def active(self, municipalities: Iterable[str], first: date, last: date) -> tuple[str, ...]:
        found = set()
        for m in municipalities:
            if (m, first, last) not in self.found:
                self.found[(m, first, last)] = other_trials(self.catalog, self.trial, m, first, last)
            found.update(self.found[(m, first, last)])
        return tuple(sorted(found, key=_trial_order))


def _zeros(grouped: dict[str, GroupTally], facts: Facts, trial: Trial, group: str, period: str) -> list[Row]:
    """A published 0 for each count with nothing to count (none waived by a trial that changes no
    obligation, in a comparison group or a baseline; no spell ended): said, not left out, so that
    a missing number means no data. A zero reveals no one, so it is not suppressed."""
    names = facts.codes["rule"].names
    changed = {e.rule for e in trial.effects if e.effect != "permit"}
    by_rule = {"obligations_required_ordinary": changed, "obligations_required": changed,
               "obligations_waived": {e.rule for e in trial.effects if e.effect in ("waive", "suspend")}}
    rows = []
    for metric, rules in by_rule.items():
        counted = {names[r] for r in grouped[metric].totals} if metric in grouped else set()
        rows += [Row(metric, group, period, None, 0, 0, False, rule) for rule in sorted(rules - counted)]
    counts = ["caseworker_hours_freed", "ly_spells_ended", "ly_over_18m_at_start", "ly_over_18m_at_end"]
    if any(e.effect == "permit" for e in trial.effects):
        counts.append("permitted_actions")
    return rows + [Row(metric, group, period, None, 0.0 if metric == "caseworker_hours_freed" else 0, 0, False)
                   for metric in counts if metric not in grouped]


def series(facts: FactParts, catalog: Catalog, trial: Trial, metric: str, start: date, end: date,
           comparison: Iterable[str]) -> list[Row]:
    """The metric month by month (each month its own period, named YYYY-MM), for the whole
    trial group and the whole comparison group; rules summed."""
    comparison = list(comparison)
    key = ("series", trial.id, metric, start, end, tuple(comparison))
    parts = _each_part(facts, key, catalog, lambda p: _monthly(p, catalog, trial, metric, start, end, comparison),
                       _monthly_again)
    rows = [_row(metric, group, month, None, None, _cells_added([{NONE: p[(month, group)]} for p in parts])[NONE])
            for month, group in parts[0]]
    # the months of a group add up to its period's total, published beside them (the form)
    rows = _protected(rows, lambda r: (r.metric, r.group), total_published=True)
    places, context = {"trial": list(trial.municipalities), "comparison": comparison}, _Context(catalog, trial)
    return [replace(r, other_trials_active=context.active(
        places[r.group], max(start, date.fromisoformat(r.period + "-01")),
        min(end, add_duration(date.fromisoformat(r.period + "-01"), "1m") - timedelta(days=1)))) for r in rows]


def _monthly(facts: Facts, catalog: Catalog, trial: Trial, metric: str, start: date, end: date,
             comparison: list[str]) -> dict[tuple[str, str], Cell]:
    """In one part of the facts: per (month, group) the metric's cell for the whole group."""
    cells = {}
    groups = {"trial": _members(facts, trial.municipalities), "comparison": _members(facts, comparison)}
    asked = groups["trial"] | groups["comparison"]
    month = start.replace(day=1)
    while month <= end:
        last = add_duration(month, "1m") - timedelta(days=1)
        contributions = _contributions(facts, catalog, trial, max(month, start), min(last, end), {metric})
        tallies = _tallies(contributions, asked, facts)
        for group, members in groups.items():
            grouped = _grouped(tallies, members).get(metric)
            # nothing there: a count of 0, a rate or share of no one (no value)
            cells[(month.strftime("%Y-%m"), group)] = (grouped.overall if grouped
                                                       else Cell(contributions[metric].kind, 0, 0, 0))
        month = add_duration(month, "1m")
    return cells


def _monthly_again(then: dict, gone: dict, now: dict) -> dict | None:
    """A part's `_monthly` after some of its citizens changed (as `_tallied_again`)."""
    try:
        return {key: Cell.total([cell.less(gone[key]), now[key]]) for key, cell in then.items()}
    except Recount:
        return None


def _members(facts: Facts, municipalities: Iterable[str]) -> np.ndarray:
    """A mask over municipality codes; one longer than the codes, so that NONE (-1) is never a member."""
    codes = facts.codes["municipality"].index
    mask = np.zeros(facts.places + 1, bool)
    mask[[codes[m] for m in municipalities if codes.get(m, facts.places) < facts.places]] = True
    return mask


def _rules_mask(facts: Facts, trial: Trial) -> np.ndarray:
    """A mask over rule codes: the rules the trial's effects change (a permission changes none)."""
    codes = facts.codes["rule"].index
    mask = np.zeros(len(facts.codes["rule"]) + 1, bool)
    mask[[codes[e.rule] for e in trial.effects if e.effect != "permit" and e.rule in codes]] = True
    return mask


def _obligations(facts: Facts, trial: Trial, lo: int, hi: int) -> tuple[Columns, Columns, Columns, Columns]:
    """The obligations due in [lo, hi] of the rules the trial changes: under the ordinary rules;
    required with the trials applied (those that can be done on time); required under this
    trial's own effects (those too that only another trial waived); and waived by this trial's
    own effects: those the fold names it for, and those its own waiver was in force for while
    the fold named another trial, earlier in the catalog (SHARED_RULE). Another trial's waivers
    are never this one's savings."""
    touched = _rules_mask(facts, trial)
    ordinary, done = facts.dated("ordinary", lo, hi), facts.dated("required", lo, hi)
    ordinary, done = ordinary.where(touched[ordinary["rule"]]), done.where(touched[done["rule"]])
    waived = facts.dated("waived", lo, hi)
    waived = waived.where(touched[waived["rule"]])
    own = covers(facts, trial, waived, ("waive", "suspend"))
    by_others = waived.where(~own)
    required = Columns.concat([done, by_others]) if len(by_others["due"]) else done
    return ordinary, done, required, waived.where(own)


def covers(facts: Facts, trial: Trial, rows: Columns, effects: Collection[str]) -> np.ndarray:
    """Which obligations (rows of an obligation table) an effect of the trial of these kinds was
    in force for: the fold names the trial for it, or it is of a rule the trial so changes, due
    within the trial's period in one of its municipalities, and the trial is for everyone (the
    store does not keep who was assessed into a narrower target group: for such a trial, only
    those the fold names it for)."""
    mask = rows["trial"] == facts.codes["trial"].index.get(trial.id, NONE - 1)
    codes = facts.codes["rule"].index
    rules = [codes[e.rule] for e in trial.effects if e.effect in effects and e.rule in codes]
    if rules and trial.target_group == "all":
        start, end = trial.period.start.toordinal(), trial.period.end.toordinal() if trial.period.end else OPEN
        mask = mask | (np.isin(rows["rule"], rules) & _members(facts, trial.municipalities)[rows["municipality"]]
                       & (rows["due"] >= start) & (rows["due"] <= end))
    return mask


def _contributions(facts: Facts, catalog: Catalog, trial: Trial, first: date, last: date, wanted: Collection[str],
                   obligations: tuple[Columns, Columns, Columns, Columns] | None = None) -> dict[str, Contributions]:
    """The wanted metrics' facts in [first, last]; the period's `_obligations` if already found."""
    lo, hi = first.toordinal(), last.toordinal()
    out: dict[str, Contributions] = {}
    ordinary, done, required, waived = obligations or _obligations(facts, trial, lo, hi)
    out["obligations_on_time_share"] = _counted(done, "share", done["on_time"].astype(float), np.ones(len(done["due"])))
    hours = np.array([(catalog.rules[r].minutes_per_obligation or 0) / 60 if r in catalog.rules else 0.0
                      for r in facts.codes["rule"].names] + [0.0])
    out["obligations_required_ordinary"] = _counted(ordinary, rule=ordinary["rule"])
    out["obligations_required"] = _counted(required, rule=required["rule"])
    out["obligations_waived"] = _counted(waived, rule=waived["rule"])
    out["caseworker_hours_freed"] = _counted(waived, numerator=hours[waived["rule"]])
    if not set(wanted) - set(out):
        return {metric: c for metric, c in out.items() if metric in wanted}

    s = facts.rows("segments")
    days = np.minimum(s["hi"], hi) - np.maximum(s["lo"], lo) + 1
    on_benefit = s.where(days > 0, "municipality", "citizen", "benefit")
    days = days[days > 0]
    happened = facts.dated("occurrences", lo, hi)
    # a conversation counts where its citizen was on a benefit in the period: the months it is
    # counted against (a sum over citizens, like every number)
    talks = happened.where(happened["talk"], *WHO)
    on_benefit_at = np.zeros((facts.places + 1) * facts.citizens, bool)
    on_benefit_at[_keys(on_benefit, facts.citizens)] = True
    talks = talks.where(on_benefit_at[_keys(talks, facts.citizens)])
    out["conversations_held_per_100_months"] = Contributions(
        "per_100_months", np.concatenate([on_benefit["municipality"], talks["municipality"]]),
        np.concatenate([on_benefit["citizen"], talks["citizen"]]),
        np.concatenate([np.zeros(len(days)), np.ones(len(talks["citizen"]))]),
        np.concatenate([days.astype(float), np.zeros(len(talks["citizen"]))]))
    exits, rf_exits = happened.where(happened["exit"], *WHO), happened.where(happened["exit_rf"], *WHO)
    rf = on_benefit.where(on_benefit["benefit"] == 2, *WHO)
    out["exits_to_job_share"] = Contributions("citizen_share", on_benefit["municipality"], on_benefit["citizen"],
                                              hits=(exits["municipality"], exits["citizen"]))
    out["exits_to_job_share_ressourceforloeb"] = Contributions(
        "citizen_share", rf["municipality"], rf["citizen"], hits=(rf_exits["municipality"], rf_exits["citizen"]))

    ly = s.where(s["benefit"] == 1)
    # a spell's end belongs to the segment that ends with it
    ended = ly.where((ly["end"] != OPEN) & (ly["hi"] == ly["end"]) & (ly["end"] >= lo) & (ly["end"] <= hi))
    out["ly_spells_ended"] = _counted(ended)
    out["ly_avg_spell_days"] = _counted(ended, "mean", (ended["end"] - ended["start"] + 1).astype(float),
                                        np.ones(len(ended["end"])))
    for metric, day in (("ly_over_18m_at_start", first), ("ly_over_18m_at_end", last)):
        cutoff = add_duration(day, "18m", sign=-1).toordinal()
        d = day.toordinal()
        over = ly.where((ly["lo"] <= d) & (d <= ly["hi"]) & (ly["start"] < cutoff), *WHO)
        # citizens, not spells: a citizen may have several cases on the benefit at once
        _, first_of_each = np.unique(over["municipality"].astype(np.int64) * facts.citizens + over["citizen"],
                                     return_index=True)
        out[metric] = _counted(over.where(first_of_each))

    trial_code = facts.codes["trial"].index.get(trial.id, NONE - 1)
    out["permitted_actions"] = _counted(happened.where(happened["permitted_by"] == trial_code, *WHO))
    return {metric: c for metric, c in out.items() if metric in wanted}


def _counted(facts: Columns, kind: str = "count", numerator: np.ndarray | None = None,
             denominator: np.ndarray | None = None, rule: np.ndarray | None = None) -> Contributions:
    return Contributions(kind, facts["municipality"], facts["citizen"], numerator, denominator, rule)


def _keys(rows: Columns, citizens: int) -> np.ndarray:
    """(municipality, citizen) of each row as one index: (municipality + 1) * citizens + citizen,
    those of no municipality (NONE) first."""
    return (rows["municipality"].astype(np.int64) + 1) * citizens + rows["citizen"]


def _present(codes: np.ndarray, size: int) -> np.ndarray:
    """The distinct codes (each below `size`), sorted: counted, not sorted."""
    return np.flatnonzero(np.bincount(codes, minlength=size))


def _within(keys: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Which of the keys are among the others (both distinct and sorted)."""
    if not len(among):
        return np.zeros(len(keys), bool)
    return among[np.minimum(np.searchsorted(among, keys), len(among) - 1)] == keys


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct keys, sorted (np.unique is much slower on large integer arrays)."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


def _tallies(contributions: dict[str, Contributions], asked: np.ndarray, facts: Facts) -> dict[str, Tally]:
    tallies = {metric: _tally(c, asked, facts.citizens) for metric, c in contributions.items()}
    return {metric: t for metric, t in tallies.items() if len(t.cells)}


def _tally(c: Contributions, asked: np.ndarray, citizens: int) -> Tally:
    selected = asked[c.municipality]
    m, who = c.municipality[selected].astype(np.int64), c.citizen[selected].astype(np.int64)
    places = len(asked)
    numerator = np.ones(len(m)) if c.numerator is None else c.numerator[selected]
    denominator = np.zeros(len(m)) if c.denominator is None else c.denominator[selected]
    rows = (m, who, numerator, denominator)
    if c.kind == "citizen_share":
        return _share_tally(m, who, c.hits, asked, citizens, rows)
    rule = c.rule[selected].astype(np.int64) if c.rule is not None else np.zeros(len(m), np.int64)
    size = (int(rule.max()) + 1) * places if len(rule) else 0
    key = rule * places + m
    facts = np.bincount(key, minlength=size)
    sums = facts if c.numerator is None else np.bincount(key, numerator, size)
    denominators = np.bincount(key, denominator, size)
    keys = _distinct(key * citizens + who)  # (rule, municipality, citizen)
    n = np.bincount(keys // citizens, minlength=size)
    present = np.flatnonzero(facts)
    cells = Cells(c.kind, present // places if c.rule is not None else np.full(len(present), NONE), present % places,
                  sums[present], denominators[present], n[present], np.zeros(len(present), np.int64))
    return Tally(c.kind, c.rule is not None, cells, keys, keys // citizens % places, None, rows, places, citizens)


def _share_tally(m: np.ndarray, who: np.ndarray, hits: tuple[np.ndarray, np.ndarray], asked: np.ndarray,
                 citizens: int, rows: tuple[np.ndarray, ...]) -> Tally:
    """Of the citizens in a municipality's cell, the share counted (hit) there; in a group's
    total, of its citizens those hit in any of its municipalities."""
    keys = _distinct(m * citizens + who)  # (municipality, citizen)
    hit_m, hit_who = hits
    asked_hit = asked[hit_m]
    hit_keys = _distinct(hit_m[asked_hit].astype(np.int64) * citizens + hit_who[asked_hit])
    n = np.bincount(keys // citizens, minlength=len(asked))
    hit_n = np.bincount(hit_keys[_within(hit_keys, keys)] // citizens, minlength=len(asked))
    present = np.flatnonzero(n)
    none = np.zeros(len(present))
    cells = Cells("citizen_share", np.full(len(present), NONE), present, none, none, n[present], hit_n[present])
    return Tally("citizen_share", False, cells, keys, keys // citizens, hit_keys, rows, len(asked), citizens)


def _grouped(tallies: dict[str, Tally], members: np.ndarray) -> dict[str, GroupTally]:
    grouped = {metric: _group(t, members) for metric, t in tallies.items()}
    return {metric: g for metric, g in grouped.items() if len(g.cells)}


def _group(t: Tally, members: np.ndarray) -> GroupTally:
    """The tally's cells in the group's municipalities, and the group's totals: a citizen in
    several of its municipalities counts once."""
    cells = t.cells.where(members[t.cells.place])
    if not len(cells):
        return GroupTally({}, {}, Cell(t.kind, 0, 0, 0))
    citizens, places = t.citizens, t.places
    keys = t.keys[members[t.key_place]]
    who = _present(keys % citizens, citizens)
    m, row_who, numerator, denominator = t.rows
    in_group = members[m]
    if t.kind == "citizen_share":
        hit_keys = t.hit_keys[members[t.hit_keys // citizens]]  # (municipality, citizen)
        counted = _within(who, _present(hit_keys % citizens, citizens))
        total = Cell(t.kind, 0, 0, len(who), int(counted.sum()),
                     Spread.of(np.column_stack((counted.astype(float), np.ones(len(who))))))
        return GroupTally(cells, {NONE: total}, total)
    totals = {}
    for r in np.unique(cells.rule).tolist():
        of_rule = cells.rule == r
        totals[r] = Cell(t.kind, cells.numerator[of_rule].sum().item(), float(cells.denominator[of_rule].sum()), 0)
    if t.by_rule:
        by_rule = np.bincount(_distinct(keys // (citizens * places) * citizens + keys % citizens) // citizens)
        for r, total in totals.items():
            total.n = int(by_rule[r])
    else:
        totals[NONE].n = len(who)
    overall = Cell(t.kind, sum(c.numerator for c in totals.values()), sum(c.denominator for c in totals.values()),
                   len(who))
    if t.kind != "count":
        totals[NONE].spread = _per_citizen(row_who[in_group], numerator[in_group], denominator[in_group],
                                                  citizens)
    return GroupTally(cells, totals, overall)


def _per_citizen(who: np.ndarray, numerator: np.ndarray, denominator: np.ndarray, citizens: int) -> Spread:
    present = _present(who, citizens)
    return Spread.of(np.column_stack((np.bincount(who, numerator, citizens)[present],
                                      np.bincount(who, denominator, citizens)[present])))


def _sorted_pairs(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    order = np.lexsort((denominator, numerator))
    return np.column_stack((numerator[order], denominator[order]))


def _rows(tallies: dict[str, GroupTally], group: str, period: str, facts: Facts) -> list[Row]:
    rules, places = facts.codes["rule"].names, facts.codes["municipality"].names
    rows = []
    for metric, tally in sorted(tallies.items()):
        for rule in sorted(tally.totals, key=lambda r: rules[r] if r != NONE else ""):
            name = rules[rule] if rule != NONE else None
            for i in sorted(np.flatnonzero(tally.cells.rule == rule).tolist(), key=lambda i: places[tally.cells.place[i]]):
                rows.append(_row(metric, group, period, places[tally.cells.place[i]], name, tally.cells.cell(i)))
            rows.append(_row(metric, group, period, None, name, tally.totals[rule]))
    return rows


def _differences_in_differences(totals: dict[tuple[str, str], dict[str, Cell]]) -> list[Row]:
    """(trial group: trial - baseline) - (comparison group: trial - baseline), for each metric
    that is a rate or share over citizens, with a 95 % interval from resampling the citizens of
    each of the four cells (percentile bootstrap, a fixed seed so answers repeat; a resample in
    which a cell has no denominator has no rate and is left out)."""
    rows = []
    for metric in DID_METRICS:
        cells = [totals.get(key, {}).get(metric) for key in DID_CELLS]
        if any(c is None for c in cells):  # no citizens in a cell, or hidden to protect one: not computed
            rows.append(Row("did_estimate", "trial", "trial", None, None, None, True, of=metric))
            continue
        n = min(c.n for c in cells)
        estimate = _did([c.value() for c in cells])
        if n < SUPPRESS_BELOW or estimate is None:
            rows.append(Row("did_estimate", "trial", "trial", None, None, None, True, of=metric))
            continue
        rng = np.random.default_rng(2016)
        replicates = np.zeros(BOOTSTRAP_REPLICATES)
        for sign, cell in zip((1, -1, -1, 1), cells):
            sums = resampled_sums(cell.spread, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                replicates += sign * sums[:, 0] / sums[:, 1] * _scale(cell)
        replicates[~np.isfinite(replicates)] = np.nan  # a resample with no denominator has no rate: left out
        low, high = np.nanpercentile(replicates, [2.5, 97.5])
        rows.append(Row("did_estimate", "trial", "trial", None, round(estimate, 4), n, False, of=metric,
                        ci95=(round(float(low), 4), round(float(high), 4))))
    return rows


def resampled_sums(spread: Spread, rng: np.random.Generator) -> np.ndarray:
    """The (numerator, denominator) sums of the citizens resampled with replacement, once per
    replicate. Past RESAMPLED_UP_TO citizens the sums are drawn from their normal limit, with the
    same mean and covariance: with thousands of citizens that differs from resampling them one by
    one by less than 400 replicates' own error, at a cost that does not grow with the citizens."""
    n = spread.n
    if spread.pairs is not None:
        # in order, so that the draws depend on what the citizens contribute, not on who they are
        ordered = _sorted_pairs(spread.pairs[:, 0], spread.pairs[:, 1])
        drawn = rng.integers(0, n, (BOOTSTRAP_REPLICATES, n))
        # a column at a time, summed along contiguous rows: a seventh of the time of the pairs'
        return np.column_stack([ordered[:, k][drawn].sum(axis=1) for k in (0, 1)])
    covariance = spread.products - np.outer(spread.sums, spread.sums) / n  # n times the citizens' covariance
    # (the svd of a matrix made symmetric: rounding can leave a variance of alike citizens at -1e-9)
    return rng.multivariate_normal(spread.sums, (covariance + covariance.T) / 2, size=BOOTSTRAP_REPLICATES,
                                   check_valid="ignore")


def _did(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    trial_now, trial_before, comparison_now, comparison_before = values
    return (trial_now - trial_before) - (comparison_now - comparison_before)


def _scale(cell: Cell) -> float:
    return 100 * DAYS_PER_MONTH if cell.kind == "per_100_months" else 1.0


def _row(metric: str, group: str, period: str, municipality: str | None, rule: str | None, c: Cell) -> Row:
    """The cell as a row, its value and n still given: `_protected` hides them where it must. A
    cell of no citizens reveals no one: not suppressed."""
    return Row(metric, group, period, municipality, c.value(), c.n, 0 < c.n < SUPPRESS_BELOW, rule)


def _protected(rows: list[Row], family: Callable[[Row], tuple] | None = None, total_published: bool = False
               ) -> list[Row]:
    """The rows with every suppressed cell's value and n hidden, and enough others hidden that
    none can be derived from what is published (secondary suppression, as Danmarks Statistik does).

    A family is cells that add up to a published total: a group's municipalities and their
    total (one metric, rule and period), or a series' months. In a family, no hidden cell is
    alone, and the hidden cells together are of 5 citizens or more: else the next smallest
    cell is hidden too, and when none is left, the total. Cells linked by a sum across metrics
    (an obligation is required, waived or suspended; the hours freed are the waived ones'
    minutes) are hidden together. Repeated until nothing more is hidden."""
    hidden = [r.suppressed for r in rows]
    families: dict[tuple, list[int]] = {}
    totals: dict[tuple, int] = {}
    linked: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        if family is not None:
            families.setdefault(family(r), []).append(i)
        elif r.municipality is None:
            totals[(r.metric, r.group, r.period, r.rule)] = i
        else:
            families.setdefault((r.metric, r.group, r.period, r.rule), []).append(i)
        if r.metric in OBLIGATION_COUNTS:
            linked.setdefault((r.group, r.period, r.municipality, r.rule), []).append(i)
            if r.metric != "caseworker_hours_freed":
                linked.setdefault(("hours", r.group, r.period, r.municipality), []).append(i)
        elif r.metric == "caseworker_hours_freed":
            linked.setdefault(("hours", r.group, r.period, r.municipality), []).append(i)
    changed = True
    while changed:
        changed = False
        for members in linked.values():
            if any(hidden[i] for i in members) and not all(hidden[i] for i in members):
                for i in members:
                    hidden[i] = changed = True
        for key, members in families.items():
            total = totals.get(key)
            while True:
                out = [i for i in members if hidden[i]]
                total_hidden = hidden[total] if total is not None else not total_published
                if not out and not total_hidden:
                    break
                if (len(out) + total_hidden != 1 and (total_hidden or sum(rows[i].n for i in out) >= SUPPRESS_BELOW)):
                    break
                shown = sorted((i for i in members if not hidden[i]), key=lambda i: (rows[i].n, rows[i].value or 0))
                if shown:
                    hidden[shown[0]] = changed = True
                elif total is not None and not hidden[total]:
                    hidden[total] = changed = True
                else:
                    break
    return [replace(r, value=None, n=None, suppressed=True) if hide else r for r, hide in zip(rows, hidden)]
