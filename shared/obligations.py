"""The obligations fold: a pure function of (a case's events, the catalogs, an as-of date) that
yields the case's due tasks, each with its legal basis, any trial exemption, and why.

Which occurrences a rule generates is decided by its `schedule` (see the rule files):
- `recurring`: fixed first dates counted from the spell's start, then at most `then_every`
  after the last one done (rolling). An open occurrence ends the chain: the next one depends on
  when it is done. A trial can replace the schedule (modify) or let a cadence be agreed per
  citizen (`cadence.agreed`).
- `cumulative`: LAS § 74 c, due when the citizen has had `required_months` of the benefit
  within `window_months`; counting starts again from each due date.
- `once_per_spell`: once, `due_after` into each spell (and at its end, where the rule says so).

Occurrences due up to the as-of date are listed, plus the next one after it. A trial's effect
(waive, modify, an agreed cadence, suspend) holds only while the trial applies to the case
(`_Context.boundaries`: its period, the case's municipality, the target group). On the first
day it no longer applies the ordinary rule restarts: fixed dates from that day on, a rolling
date counted from the last occurrence but not before that day, a suspended offer due that day.
"""

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from shared.catalog import Catalog, Rule, Trial, add_duration
from shared.timeline import Applying, Cadence, CaseEvent, Spell, Timeline, applying

# Raise it whenever what the fold yields, or the rows derived from it, change: the cases stored
# by another version are derived again (shared/fold_version.py).
FOLD_VERSION = 6
DUE_SOON = timedelta(days=14)  # an occurrence is `due` (not `upcoming`) from this long before its date
DAYS_PER_MONTH = 365.25 / 12
MAX_OCCURRENCES = 2000  # per rule and spell: a guard, far above any real case


@dataclass(frozen=True)
class Exemption:
    trial: str
    title: str
    effect: str
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Obligation:
    rule: str
    title: str
    legal_reference: str
    due: date
    deadline: date  # the last day it is on time; the due date unless the rule gives a window
    # listed from this day on: the previous occurrence's due date (or the spell's start), so
    # that a list as of a date holds what the fold as of that date yields (the next one included)
    arises_on: date
    basis: str  # required | waived | suspended
    municipality: str | None  # responsible on the due date
    done_on: date | None = None
    exemption: Exemption | None = None
    because: tuple[str, ...] = field(default=())

    def status(self, as_of: date) -> str:
        if self.basis != "required":
            return self.basis
        if self.done_on is not None and self.done_on <= as_of:
            return "done"
        if as_of > self.deadline:
            return "overdue"
        return "due" if as_of >= self.due - DUE_SOON else "upcoming"

    def as_json(self, case_id: str, as_of: date) -> dict[str, Any]:
        return {
            "case_id": case_id,
            "rule": self.rule,
            "title": self.title,
            "legal_reference": self.legal_reference,
            "due": self.due.isoformat(),
            "deadline": self.deadline.isoformat(),
            "status": self.status(as_of),
            "done_on": self.done_on.isoformat() if self.done_on and self.done_on <= as_of else None,
            "municipality": self.municipality,
            "exemption": self.exemption.as_json() if self.exemption else None,
            "because": list(self.because),
        }


def fold(events: Iterable[CaseEvent], catalog: Catalog, as_of: date, *, trials: bool = True,
         complete: bool = False) -> list[Obligation]:
    """The case's obligations as of `as_of` (events dated later are ignored). With
    `trials=False`, the ordinary rules alone: what the law would have required. By default a
    rolling chain stops at an open occurrence (the worklist's view: the next one depends on when
    it is done); with `complete=True` every occurrence the rules required is listed, a missed
    one counting as held on its due date (the evaluation's count)."""
    return fold_timeline(Timeline.build(events, as_of), catalog, as_of, trials=trials, complete=complete)


def fold_timeline(timeline: Timeline, catalog: Catalog, as_of: date, *, trials: bool = True,
                  complete: bool = False) -> list[Obligation]:
    """`fold` of a timeline already built from every event up to `as_of`."""
    if timeline.opened is None:
        return []
    context = _Context(catalog, timeline, as_of, trials, complete)
    obligations = []
    for rule in catalog.rules.values():
        # a rule yields occurrences only within spells of what it applies to: most rules are
        # about benefits the case never had
        if rule.kind == "obligation" and rule.schedule in _GENERATORS and any(map(context.spells_of, rule.applies_to)):
            obligations += _GENERATORS[rule.schedule](rule, context)
    return sorted(obligations, key=lambda o: (o.due, o.rule))


@dataclass
class _Context:
    catalog: Catalog
    timeline: Timeline
    as_of: date
    trials: bool
    complete: bool = False

    def __post_init__(self) -> None:
        self._candidates: dict[str, list[Trial]] = {}
        self._boundaries: dict[str, list[date]] = {}
        self._spells: dict[str, list[Spell]] = {}
        self._changes: dict[str, list[date]] = {}
        self._places = {m for _, m in self.timeline.municipalities}  # every municipality the case has been in

    def candidates(self, rule: Rule) -> list[Trial]:
        """The trials touching `rule` in a municipality the case has ever been in: most cases
        have none, and the fold asks for every occurrence."""
        if not self.trials:
            return []
        if rule.id not in self._candidates:
            self._candidates[rule.id] = [t for t in self.catalog.trials_touching(rule.id)
                                         if not self._places.isdisjoint(t.municipalities)]
        return self._candidates[rule.id]

    def exemption(self, rule: Rule, day: date) -> Applying | None:
        trials = self.candidates(rule)
        return applying(trials, rule.id, self.timeline, day) if trials else None

    def boundaries(self, rule: Rule) -> list[date]:
        """The days on which what applies to `rule` may change for this case: a candidate
        trial starts or ends, the case moves, the citizen is assessed into or out of a target
        group. An effect ends on one of them, and the ordinary rule applies again from it."""
        trials = self.candidates(rule)
        if not trials:
            return []
        if rule.id not in self._boundaries:
            days = {day for day, _ in self.timeline.municipalities[1:]}
            for trial in trials:
                days.add(trial.period.start)
                if trial.period.end is not None:
                    days.add(trial.period.end + timedelta(days=1))
                days.update(day for day, _ in self.timeline.target_groups.get(trial.id, []))
            self._boundaries[rule.id] = sorted(days)
        return self._boundaries[rule.id]

    def schedule_changes(self, rule: Rule) -> list[date]:
        """The days on which the schedule of `rule` may change for this case, in order: a new
        version of the law, or a boundary."""
        if rule.id not in self._changes:
            parameter = rule.parameters.get("schedule")
            self._changes[rule.id] = sorted({*(parameter.changes() if parameter else ()), *self.boundaries(rule)})
        return self._changes[rule.id]

    def ends(self, rule: Rule, first: date, upto: date, holds: Callable[[Applying | None], bool]) -> date | None:
        """The first day in [first, upto] on which `holds` is no longer true of what applies
        to `rule`: the day an effect ends (and the ordinary rule restarts). `first` counts: an
        agreed cadence counted from a talk held on the day the case moved out of the trial
        ends that day, as it would the day after."""
        for day in self.boundaries(rule):
            if first <= day <= upto and not holds(self.exemption(rule, day)):
                return day
        return None

    def spells_of(self, name: str) -> list[Spell]:
        """`Timeline.spells`, once per fold: the fold asks for them rule by rule."""
        if name not in self._spells:
            self._spells[name] = self.timeline.spells(name)
        return self._spells[name]

    def spells(self, rule: Rule) -> Iterator[tuple[str, Spell]]:
        """The spells the rule counts, each from the rule's first day at the earliest."""
        for name in rule.applies_to:
            for spell in _in_force(rule, self.spells_of(name)):
                if rule.while_receiving is None:
                    yield name, spell
                else:
                    for other in self.spells_of(rule.while_receiving):
                        both = _intersection(spell, other)
                        if both is not None:
                            yield name, both

    def make(self, rule: Rule, due: date, arises_on: date, because: list[str], *, deadline: date | None = None,
             done_on: date | None = None, ex: Applying | None = None) -> Obligation:
        basis = "required"
        exemption = None
        if ex is not None and ex.effect.effect in ("waive", "suspend"):
            basis = "waived" if ex.effect.effect == "waive" else "suspended"
        if ex is not None:
            exemption = Exemption(ex.trial.id, ex.trial.title, ex.effect.effect, ex.effect.note)
            because = [*because, ex.cite(self.timeline, due)]
        if basis != "required":
            done_on = None
        elif done_on is not None:
            because = [*because, f"done: {rule.completed_by.event} {done_on}"]
        return Obligation(
            rule=rule.id, title=rule.title, legal_reference=rule.legal_reference, due=due,
            deadline=deadline or due, arises_on=arises_on, basis=basis,
            municipality=self.timeline.municipality_on(due), done_on=done_on, exemption=exemption, because=tuple(because),
        )


def _in_force(rule: Rule, spells: list[Spell]) -> list[Spell]:
    """`spells` as the rule counts them: a rule has no values before its first dated one, so it
    did not exist then; a spell running on that day counts from it, an earlier one not at all."""
    first = rule.in_force_from
    if first is None or all(s.start >= first for s in spells):
        return spells
    return [s if s.start >= first else
            Spell(first, s.end, f"{s.started_by}; {rule.id} in force from {first}: counted from then", s.ended_by,
                  s.end_reason)
            for s in spells if s.end is None or s.end >= first]


def _intersection(a: Spell, b: Spell) -> Spell | None:
    start = max(a.start, b.start)
    ends = [e for e in (a.end, b.end) if e is not None]
    end = min(ends) if ends else None
    if end is not None and end < start:
        return None
    return Spell(start, end, f"{a.started_by}; {b.started_by}", a.ended_by or b.ended_by)


def _parameter_cited(rule: Rule, name: str, day: date, value: Any) -> str:
    entry = rule.parameters[name].entry_at(day)
    since, reference = (entry[0], entry[1].reference) if entry else (day, "")
    return f"{rule.id}.{name} = {_short(value)} (in force from {since}; {reference})"


def _short(value: Any) -> str:
    if isinstance(value, dict) and "first" in value:
        first = ", ".join(value["first"])
        then = f", then every {value['then_every']}" if value.get("then_every") else ", then as agreed"
        return f"first at {first}{then}"
    return str(value)


def _next_completion(dates: list[date], after: date | None, not_before: date) -> date | None:
    for d in dates:
        if d >= not_before and (after is None or d > after):
            return d
    return None


def _recurring(rule: Rule, ctx: _Context) -> list[Obligation]:
    completions = ctx.timeline.dates_of(rule.completed_by)
    agreements = ctx.timeline.cadences.get(rule.id, [])
    out: list[Obligation] = []
    for key, spell in ctx.spells(rule):
        out += _recurring_in_spell(rule, ctx, key, spell, completions, agreements)
    return out


def _schedule(rule: Rule, ctx: _Context, key: str, day: date) -> tuple[dict | None, Applying | None]:
    """The schedule in force on `day`, and the trial that sets it, if one does."""
    ex = ctx.exemption(rule, day)
    if ex is not None and ex.effect.effect == "modify" and ex.effect.parameter == "schedule":
        return (ex.effect.value or {}).get(key), ex
    return (rule.parameter("schedule", day) or {}).get(key), None


def _schedule_cited(rule: Rule, day: date, value: dict | None, ex: Applying | None) -> str:
    if ex is not None:
        return f"{ex.trial.id} sets {rule.id}.schedule = {_short(value)}"
    return _parameter_cited(rule, "schedule", day, value)


class _Next(NamedTuple):
    """A recurring rule's next occurrence: its due date, why, whether it is a fixed date of the
    spell (not counted from the last one), and the trial that changed it, if one did."""

    due: date
    why: str
    fixed: bool
    set_by: Applying | None = None


class _Agreement(NamedTuple):
    cadence: Cadence
    under: Applying  # the trial that let it be agreed


def _lets_agree(ex: Applying | None) -> bool:
    return ex is not None and ex.effect.individually_agreed


def _agreed(rule: Rule, ctx: _Context, agreements: list[Cadence], day: date) -> _Agreement | None:
    """The cadence agreed for this rule in force on `day`: the latest agreement, made where a
    trial let it be agreed, while such a trial has applied every day since (one that ended
    leaves the agreement ended: another trial starting later does not revive it)."""
    for cadence in reversed(agreements):
        if cadence.agreed_on <= day:
            under = ctx.exemption(rule, cadence.agreed_on)
            if (_lets_agree(under) and _lets_agree(ctx.exemption(rule, day))
                    and ctx.ends(rule, cadence.agreed_on, day, _lets_agree) is None):
                return _Agreement(cadence, under)
            return None
    return None


def _recurring_in_spell(rule: Rule, ctx: _Context, key: str, spell: Spell, completions: list[date],
                        agreements: list[Cadence]) -> list[Obligation]:
    out: list[Obligation] = []
    anchor = spell.start  # rolling occurrences count from the last one done (or waived)
    last_due: date | None = None
    last_used: date | None = None
    for _ in range(MAX_OCCURRENCES):
        found = _next_due(rule, ctx, key, spell, agreements, anchor, last_due)
        if found is None:
            break
        if spell.end is not None and found.due > spell.end:
            break
        if not ctx.complete and out and out[-1].basis == "required" and out[-1].done_on is None and not found.fixed:
            break  # the last one is open: a rolling cadence goes on once it is done
        done_on = _next_completion(completions, last_used, spell.start)
        ex = ctx.exemption(rule, found.due)
        why = [spell.started_by, found.why]
        if ex is not None and ex.effect.in_a_row is not None and _waived_in_a_row(out, ex) >= ex.effect.in_a_row:
            why.append(f"{ex.trial.id} waives at most {ex.effect.in_a_row} in a row: required again")
            ex = None
        if ex is None or ex.effect.effect not in ("waive", "suspend"):
            ex = found.set_by  # a modification is cited only where it changed the date
        occurrence = ctx.make(rule, found.due, anchor if last_due else spell.start, why, done_on=done_on, ex=ex)
        if occurrence.done_on is not None:
            last_used = done_on
        out.append(occurrence)
        # the latest so far: a rolling date counted from an early talk may come before a fixed
        # one already listed, which must not be listed again
        last_due = max(last_due or found.due, found.due)
        if found.due > ctx.as_of:
            break  # the next one is listed; later ones depend on it
        anchor = occurrence.done_on or found.due
    return out


def _waived_in_a_row(out: list[Obligation], ex: Applying) -> int:
    """How many of the last occurrences the same trial waived, one after the other."""
    n = 0
    for o in reversed(out):
        if o.basis != "waived" or o.exemption is None or o.exemption.trial != ex.trial.id:
            break
        n += 1
    return n


def _next_due(rule: Rule, ctx: _Context, key: str, spell: Spell, agreements: list[Cadence], anchor: date,
              last_due: date | None) -> _Next | None:
    """The next occurrence. An agreed cadence in force on the ordinary date replaces it,
    counted from the later of the last occurrence and the agreement, while a trial that lets
    it be agreed applies; on the day none does any more, the ordinary rule restarts."""
    ordinary = _scheduled_due(rule, ctx, key, spell, anchor, last_due)
    agreement = _agreed(rule, ctx, agreements, ordinary.due if ordinary else date.max) if agreements else None
    if agreement is None:
        return ordinary
    start = max(anchor, agreement.cadence.agreed_on)
    due = start + timedelta(days=agreement.cadence.interval_days)
    ended = ctx.ends(rule, start, due, _lets_agree)
    if ended is None:  # set by the trial that lets it be agreed on the due date, perhaps not the one agreed under
        return _Next(due, f"{agreement.cadence.cited} under {agreement.under.trial.id}", False,
                     ctx.exemption(rule, due))
    return _scheduled_due(rule, ctx, key, spell, anchor, last_due, restart=ended)


def _scheduled_due(rule: Rule, ctx: _Context, key: str, spell: Spell, anchor: date, last_due: date | None,
                   restart: date | None = None) -> _Next | None:
    """The next date under the schedule in force at `anchor` (or from `restart`): the law's, or
    a trial's modification. Where the schedule changes before that date (a new version of the
    law; a trial's modification starting or ending), the schedule from the change applies
    instead: its fixed dates from the change on, and a rolling date that would have fallen
    before the change is due on the change day."""
    # the schedule in force when the last one fell due, not when it was done (perhaps long after)
    start = restart or min(anchor, last_due or anchor)
    while True:
        schedule, ex = _schedule(rule, ctx, key, start)
        skip_to = last_due if restart is None else max(last_due or date.min, restart - timedelta(days=1))
        found = _due_under(schedule, spell, anchor, skip_to)
        if found is None:
            return None
        due, fixed = found
        if restart is not None and due < restart:
            due, fixed = restart, False
        change = _schedule_change(rule, ctx, key, start, due, schedule)
        if change is None:
            break
        start = restart = change
    set_by = None
    if ex is not None:  # the trial's schedule, cited only where it gives another date than the law's
        ordinary = _due_under((rule.parameter("schedule", start) or {}).get(key), spell, anchor, skip_to)
        set_by = ex if ordinary != found else None
    return _Next(due, _schedule_cited(rule, start, schedule, ex), fixed, set_by)


def _due_under(schedule: dict | None, spell: Spell, anchor: date, last_due: date | None) -> tuple[date, bool] | None:
    if not schedule:
        return None
    for offset in schedule.get("first", []):
        due = add_duration(spell.start, offset)
        if last_due is None or due > last_due:
            return due, True
    every = schedule.get("then_every")
    return (add_duration(anchor, every), False) if every else None


def _schedule_change(rule: Rule, ctx: _Context, key: str, after: date, upto: date, schedule: dict | None) -> date | None:
    """The first day in (after, upto] from which another schedule is in force."""
    days = ctx.schedule_changes(rule)
    for day in days[bisect_right(days, after):bisect_right(days, upto)]:
        if _schedule(rule, ctx, key, day)[0] != schedule:
            return day
    return None


def _cumulative(rule: Rule, ctx: _Context) -> list[Obligation]:
    spells = _in_force(rule, [s for name in rule.applies_to for s in ctx.spells_of(name)])
    if not spells:
        return []
    completions = ctx.timeline.dates_of(rule.completed_by)
    out: list[Obligation] = []
    counting_from = spells[0].start
    # a catch-up counts from the last one required: a waived one did not reset what is owed
    required_from = counting_from
    last_used: date | None = None
    catch_ups = _exemption_ends(rule, ctx)
    for _ in range(MAX_OCCURRENCES):
        months = rule.parameter("required_months", counting_from), rule.parameter("window_months", counting_from)
        if None in months:
            break  # a null value ended the rule
        required, window = (round(m * DAYS_PER_MONTH) for m in months)
        due = _first_reaching(spells, counting_from, required, window)
        catch_up = next((d for d in catch_ups if counting_from < d and (due is None or d < due)
                         and any(s.covers(d) for s in spells)
                         and sum(s.days_within(max(required_from, d - timedelta(days=window)), d - timedelta(days=1))
                                 for s in spells) >= required), None)
        if catch_up is not None:
            due = catch_up
        if due is None:
            break
        months = rule.parameter("window_months", due), rule.parameter("required_months", due)
        if None in months:
            break  # a null value ended the rule before it fell due
        # done by the end of the window: as many calendar months after the due date as the
        # window is longer than the required time
        margin = f"{months[0] - months[1]}m"
        deadline = add_duration(due, margin) - timedelta(days=1)
        done_on = _next_completion(completions, last_used, add_duration(due, margin, sign=-1))
        because = [s.started_by for s in spells if s.start <= due][-3:]
        because.append(_parameter_cited(rule, "required_months", due, rule.parameter("required_months", due)))
        if catch_up is not None:
            because.append(f"exemption ended the day before {due}")
        ex = ctx.exemption(rule, due)
        occurrence = ctx.make(rule, due, counting_from, because, deadline=deadline, done_on=done_on, ex=ex)
        if occurrence.done_on is not None:
            last_used = done_on
        out.append(occurrence)
        if due > ctx.as_of:
            break
        counting_from = due
        if occurrence.basis == "required":
            required_from = due
    return out


def _first_reaching(spells: list[Spell], counting_from: date, required: int, window: int) -> date | None:
    """The day after the first day on which the spells cover `required` days of the `window`
    days ending that day, counting only days from `counting_from`."""
    last_possible = max((s.end or date.max) for s in spells)
    day = counting_from + timedelta(days=required - 1)
    while day <= last_possible and day < date(9999, 1, 1):
        lo = max(counting_from, day - timedelta(days=window - 1))
        covered = sum(s.days_within(lo, day) for s in spells)
        if covered >= required:
            return day + timedelta(days=1)
        day += timedelta(days=required - covered)  # coverage grows by a day a day at most
    return None


def _exemption_ends(rule: Rule, ctx: _Context) -> list[date]:
    """Days on which a waiving trial stops applying to the case: its period ends, the case
    moves out of its municipalities, or the citizen is assessed out of its target group."""
    ends = []
    for day in ctx.boundaries(rule):
        before, now = ctx.exemption(rule, day - timedelta(days=1)), ctx.exemption(rule, day)
        if before is not None and before.effect.effect == "waive" and (now is None or now.effect.effect != "waive"):
            ends.append(day)
    return ends


def _suspends(ex: Applying | None) -> bool:
    return ex is not None and ex.effect.effect == "suspend"


def _once_per_spell(rule: Rule, ctx: _Context) -> list[Obligation]:
    completions = ctx.timeline.dates_of(rule.completed_by)
    out: list[Obligation] = []
    last_used: date | None = None
    for key, spell in ctx.spells(rule):
        due_after = (rule.parameter("due_after", spell.start) or {}).get(key)
        moments = []
        if due_after is not None:
            moments.append((add_duration(spell.start, due_after), spell.started_by))
        if spell.end is not None and rule.parameter("also_at_end", spell.end):
            moments.append((spell.end, spell.ended_by))
        lookback = rule.parameter("lookback", spell.start)
        for due, cited in moments:
            if spell.end is not None and due > spell.end:
                continue  # the spell ended first: nothing was required
            if rule.parameter("due_after", due) is None:
                continue  # the rule no longer applies on that date
            not_before = add_duration(due, lookback, sign=-1) if lookback else spell.start
            done_on = _next_completion(completions, last_used, not_before)
            because = [cited, _parameter_cited(rule, "due_after", due, due_after)]
            ex = ctx.exemption(rule, due)
            if ex is not None and ex.effect.effect == "suspend":
                suspension = next((s for s in ctx.timeline.suspensions if s.covers(due)), None)
                if suspension is None:
                    ex = None  # the trial allows suspending; this duty was not suspended
                else:
                    because.append(suspension.started_by)
                    # resumed, or the trial stops applying (it ends, the case moves, the citizen
                    # is assessed out): due again from that day
                    lapsed = ctx.ends(rule, due, suspension.end or date.max, _suspends)
                    again = lapsed or suspension.end
                    why = f"{ex.trial.id} no longer applies from {lapsed}" if lapsed else suspension.ended_by
                    if again is not None and (spell.end is None or again <= spell.end):
                        resumed = ctx.make(rule, again, due, [cited, f"{why}: due again"], done_on=done_on)
                        out.append(ctx.make(rule, due, spell.start, because, ex=ex))
                        out.append(resumed)
                        last_used = done_on or last_used
                        continue
            occurrence = ctx.make(rule, due, spell.start, because, done_on=done_on, ex=ex)
            if occurrence.done_on is not None:
                last_used = done_on
            out.append(occurrence)
    return out


_GENERATORS = {"recurring": _recurring, "cumulative": _cumulative, "once_per_spell": _once_per_spell}
