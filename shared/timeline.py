"""A case's history as periods and dates: the common ground of the obligations fold, the
permission checks and the evaluation numbers. Built from events in effective-date order, so a
back-dated event takes effect from its date."""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple, Protocol

from shared.catalog import CompletedBy, Trial, TrialEffect


class CaseEvent(Protocol):
    name: str  # the type without dk.frisag., e.g. "benefit.started"
    data: dict[str, Any]


def describe(name: str, data: dict[str, Any]) -> str:
    """How an event is cited in `because`: 'benefit.started ledighedsydelse 2019-01-01'."""
    detail = [str(data[k]) for k in ("benefit", "offer", "kind", "form", "municipality", "trial", "rule") if k in data]
    if "in_target_group" in data:
        detail.append("in" if data["in_target_group"] else "out")
    if "interval_days" in data:
        detail.append(f"every {data['interval_days']} days")
    return " ".join([name, *detail, data["date"]])


@dataclass
class Spell:
    start: date
    end: date | None  # the last day, inclusive; None while it runs
    started_by: str
    ended_by: str | None = None
    end_reason: str | None = None  # benefit.ended's reason

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def days_within(self, lo: date, hi: date) -> int:
        """How many days of [lo, hi] the spell covers."""
        start, end = max(self.start, lo), min(self.end or hi, hi)
        return (end - start).days + 1 if start <= end else 0

    def clipped(self, last: date | None) -> "Spell | None":
        """The spell cut off after `last` (the case's closing date)."""
        if last is None or (self.end is not None and self.end <= last):
            return self
        if self.start > last:
            return None
        return Spell(self.start, last, self.started_by, self.ended_by or f"case closed {last}")


class Cadence(NamedTuple):
    """A cadence agreed for a rule (`cadence.agreed`): valid only where a trial lets it be agreed."""

    agreed_on: date
    interval_days: int
    cited: str


@dataclass
class Timeline:
    opened: date | None = None
    closed: date | None = None
    closed_reason: str | None = None
    citizen: str | None = None
    caseworker: str | None = None
    municipalities: list[tuple[date, str]] = field(default_factory=list)
    benefits: dict[str, list[Spell]] = field(default_factory=lambda: defaultdict(list))
    offers: dict[str, list[Spell]] = field(default_factory=lambda: defaultdict(list))
    suspensions: list[Spell] = field(default_factory=list)  # offer duty in abeyance (T22)
    target_groups: dict[str, list[tuple[date, bool]]] = field(default_factory=lambda: defaultdict(list))
    cadences: dict[str, list["Cadence"]] = field(default_factory=lambda: defaultdict(list))
    occurrences: dict[tuple[str, str | None], list[date]] = field(default_factory=lambda: defaultdict(list))
    last_date: date | None = None

    @classmethod
    def build(cls, events: Iterable[CaseEvent], as_of: date | None = None) -> "Timeline":
        """Events in the order they were stored; those dated after `as_of` are left out."""
        dated = [(date.fromisoformat(e.data["date"]), i, e) for i, e in enumerate(events)]
        dated = [d for d in dated if as_of is None or d[0] <= as_of]
        dated.sort(key=lambda d: (d[0], d[1]))
        timeline = cls()
        for day, _, e in dated:
            timeline._apply(e.name, e.data, day)
        return timeline

    def _apply(self, name: str, data: dict[str, Any], day: date) -> None:
        self.last_date = day
        self.occurrences[(name, None)].append(day)
        kind = data.get("kind") or data.get("form")
        if kind:
            self.occurrences[(name, kind)].append(day)
        if name == "case.opened":
            self.opened, self.citizen = day, data.get("citizen")
            self.municipalities.append((day, data["municipality"]))
        elif name == "case.moved":
            self.municipalities.append((day, data["municipality"]))
        elif name == "case.assigned":
            self.caseworker = data["caseworker"]
        elif name == "case.closed":
            self.closed, self.closed_reason = day, data["reason"]
        elif name in ("benefit.started", "offer.started"):
            spells = (self.benefits if name == "benefit.started" else self.offers)[data.get("benefit") or data["offer"]]
            if not spells or spells[-1].end is not None:
                spells.append(Spell(day, None, describe(name, data)))
        elif name in ("benefit.ended", "offer.ended"):
            spells = (self.benefits if name == "benefit.ended" else self.offers)[data.get("benefit") or data["offer"]]
            if spells and spells[-1].end is None:
                spells[-1].end, spells[-1].ended_by, spells[-1].end_reason = day, describe(name, data), data.get("reason")
        elif name == "offer-duty.suspended":
            if not self.suspensions or self.suspensions[-1].end is not None:
                self.suspensions.append(Spell(day, None, describe(name, data)))
        elif name == "offer-duty.resumed":
            if self.suspensions and self.suspensions[-1].end is None:
                self.suspensions[-1].end, self.suspensions[-1].ended_by = day, describe(name, data)
        elif name == "target-group.assessed":
            self.target_groups[data["trial"]].append((day, data["in_target_group"]))
        elif name == "cadence.agreed":
            self.cadences[data["rule"]].append(Cadence(day, data["interval_days"], describe(name, data)))

    def responsibility(self) -> list[tuple[date, date | None, str]]:
        """(from, until exclusive or None, municipality): who was responsible for the case when.
        Of two changes on one day, the later one counts."""
        periods = []
        for i, (start, municipality) in enumerate(self.municipalities):
            following = self.municipalities[i + 1][0] if i + 1 < len(self.municipalities) else None
            if following != start:
                periods.append((start, following, municipality))
        return periods

    def municipality_on(self, day: date) -> str | None:
        i = bisect_right(self.municipalities, (day, "\uffff"))
        return self.municipalities[i - 1][1] if i else None

    def in_target_group(self, trial: str, day: date) -> bool:
        assessments = self.target_groups.get(trial, [])
        i = bisect_right(assessments, (day, True))
        return assessments[i - 1][1] if i else False

    def dates_of(self, completed_by: CompletedBy) -> list[date]:
        return self.occurrences.get((completed_by.event, completed_by.kind), [])

    def spells(self, name: str) -> list[Spell]:
        """Benefit or offer spells of that name, cut off where the case closed."""
        spells = self.benefits.get(name) or self.offers.get(name)
        if not spells:
            return []
        return [s for s in (spell.clipped(self.closed) for spell in spells) if s is not None]


_VERBS = {"waive": "waives", "modify": "modifies", "suspend": "suspends", "permit": "permits"}


@dataclass(frozen=True)
class Applying:
    """A trial that applies to a case on a day, with its effect on one rule."""

    trial: Trial
    effect: TrialEffect

    def cite(self, timeline: Timeline, day: date) -> str:
        period = f"{self.trial.period.start}..{self.trial.period.end or ''}"
        return (f"{self.trial.id} {_VERBS[self.effect.effect]} {self.effect.rule} on {day}: "
                f"municipality {timeline.municipality_on(day)} in {self.trial.id} {period}")


def trial_applies(trial: Trial, timeline: Timeline, day: date) -> bool:
    return (
        trial.period.contains(day)
        and timeline.municipality_on(day) in trial.municipalities
        and (trial.target_group == "all" or timeline.in_target_group(trial.id, day))
    )


def applying(trials: Iterable[Trial], rule: str, timeline: Timeline, day: date) -> Applying | None:
    """The first of `trials` (those touching `rule`) whose effect on it applies to this case on
    `day`, if any."""
    return next(all_applying(trials, rule, timeline, day), None)


def all_applying(trials: Iterable[Trial], rule: str, timeline: Timeline, day: date) -> Iterator[Applying]:
    """Every one of `trials` (those touching `rule`) whose effect on it applies to this case on
    `day`: a permission asks whether any of them permits."""
    for trial in trials:
        if trial_applies(trial, timeline, day):
            yield Applying(trial, trial.effect_on(rule))


def trial_periods(trials: Iterable[Trial], timeline: Timeline) -> list[tuple[Trial, date, date | None]]:
    """When each of `trials` applies to the case (`trial_applies`), from its opening to its
    closing day: (trial, first day, last day or None while it lasts), by trial, then date."""
    if timeline.opened is None:
        return []
    periods = []
    for trial in trials:
        # the days on which whether it applies may change
        days = {timeline.opened, trial.period.start, *(day for day, _ in timeline.municipalities),
                *(day for day, _ in timeline.target_groups.get(trial.id, []))}
        if trial.period.end is not None:
            days.add(trial.period.end + timedelta(days=1))
        if timeline.closed is not None:
            days.add(timeline.closed + timedelta(days=1))
        start = None
        for day in sorted(d for d in days if d >= timeline.opened):
            applies = trial_applies(trial, timeline, day) and (timeline.closed is None or day <= timeline.closed)
            if applies and start is None:
                start = day
            elif not applies and start is not None:
                periods.append((trial, start, day - timedelta(days=1)))
                start = None
        if start is not None:
            periods.append((trial, start, None))
    return periods
