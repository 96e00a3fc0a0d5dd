"""What-if: a scenario, a change to the catalog in the catalog's own format (a draft trial, a
trial changed or left out, a rule's dated parameters changed), folded over the stored histories
of the cases it can change, beside the catalog in force. Nothing stored is changed: both folds
run in memory over the reporting store's events.

Counted per municipality (responsible on the due date), month of the due date and rule (the
rules the scenario changes): the obligations required and waived (or suspended) under the
catalog in force ("today": for past months, what the rules in force actually required) and
under the scenario, and the citizens whose obligations differ. Months after today are projected: the fold lists due
dates up to HORIZON ahead for the cases there are today, and assumes no new ones.

Discretion (`protected`): a cell with 1-4 citizens behind any of its numbers is hidden whole
(its numbers can be subtracted from each other), and others with it wherever a hidden one could
be recovered from a total: the months of a municipality, its rules, the municipalities of the
total and of each rule.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from threading import Lock
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, create_engine, insert, select, update

from services.reporting.store import ANONYMOUS, HORIZON, citizens, responsibility, what_if
from shared.catalog import Catalog, Rule, Trial, parse_duration
from shared.municipalities import municipalities
from shared.obligations import Obligation, fold_timeline
from shared.projection import ERASED, store_tables, stored_histories, through_keys
from shared.timeline import Timeline

log = logging.getLogger(__name__)
SUPPRESS_BELOW = 5  # as the evaluation's
CHUNK = 2000  # cases folded per task
MAX_MONTHS = 240  # months one answer counts, each a cell per municipality
# the numbers of a cell, in this order
REQUIRED_TODAY, REQUIRED_SCENARIO, WAIVED_TODAY, WAIVED_SCENARIO = range(4)
NUMBERS = ("required_today", "required_scenario", "waived_today", "waived_scenario")
AFFECTED = 4  # the citizens whose obligations in the cell differ, beside one set per number
MINUTES_FREED = 4  # an answer's cell keeps the minutes freed beside its numbers
ASSUMES = ("Måneder efter i dag er fremskrevet: de sager, der er i dag, med deres ydelser og forløb som de står, "
           "og pligterne som foldningen forudser dem; ingen nye sager, og ingen ændringer ud over scenariet.")



class ScenarioError(ValueError):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {why}" for where, why in errors))
        self.errors = errors


class Scenario(BaseModel):
    """Trials added or replacing the one of the same id, trials left out, rules replacing the
    one of the same id: each as its file in `shared/catalog/` reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str = Field(min_length=1, max_length=200)
    trials: list[Trial] = Field(default_factory=list, max_length=100)
    without_trials: list[str] = Field(default_factory=list, max_length=100)
    rules: list[Rule] = Field(default_factory=list, max_length=100)

    def applied_to(self, catalog: Catalog) -> Catalog:
        """The catalog with this scenario's changes; ScenarioError naming each wrong field."""
        errors = []
        given: dict[str, int] = {}
        for i, trial in enumerate(self.trials):
            if trial.id in given:
                errors.append((f"trials[{i}].id", f"{trial.id} is given twice (also trials[{given[trial.id]}])"))
            given.setdefault(trial.id, i)
        for i, trial_id in enumerate(self.without_trials):
            if trial_id not in catalog.trials:
                errors.append((f"without_trials[{i}]", f"no trial {trial_id} in the catalog"))
            elif trial_id in given:
                errors.append((f"without_trials[{i}]", f"{trial_id} is changed in trials[{given[trial_id]}] too"))
        for i, rule in enumerate(self.rules):
            if rule.id not in catalog.rules:
                errors.append((f"rules[{i}].id", f"no rule {rule.id} in the catalog: a scenario changes the rules there "
                                                 "are (the fold knows how each one's occurrences arise)"))
            elif rule.schedule != catalog.rules[rule.id].schedule or rule.kind != catalog.rules[rule.id].kind:
                errors.append((f"rules[{i}].schedule", f"{rule.id}'s kind and schedule stay as they are; change its "
                                                       "parameters"))
            else:
                errors += _parameters_unlike(f"rules[{i}]", rule, catalog.rules[rule.id])
        rules = {**catalog.rules, **{r.id: r for r in self.rules}}
        for i, trial in enumerate(self.trials):
            for j, effect in enumerate(trial.effects):
                if effect.rule not in rules:
                    errors.append((f"trials[{i}].effects[{j}].rule", f"no rule {effect.rule} in the catalog"))
                elif effect.parameter is not None:
                    schedules = [v.value for p in (rules[effect.rule].parameters.get(effect.parameter),) if p
                                 for v in p.values.values() if v.value is not None]
                    why = _unlike(effect.value, schedules) if schedules else f"{effect.rule} has no {effect.parameter}"
                    if why:
                        errors.append((f"trials[{i}].effects[{j}].value", why))
        if errors:
            raise ScenarioError(errors)
        left_out = set(self.without_trials)
        trials = {k: t for k, t in catalog.trials.items() if k not in left_out} | {t.id: t for t in self.trials}
        return Catalog(rules, trials)

    def municipalities(self, catalog: Catalog) -> frozenset[str] | None:
        """Where it can change a case's obligations: the municipalities of the trials it adds,
        changes (before and after) or leaves out; None (everywhere) if it changes a rule, or
        nothing (compared with the catalog in force everywhere)."""
        if self.rules or not (self.trials or self.without_trials):
            return None
        return frozenset(m for trial in self._trials_changed(catalog) for m in trial.municipalities)

    def months(self, catalog: Catalog, reach: date) -> tuple[date, date]:
        """The months it can change by default: from the first day a change applies to the last
        (`reach`, as far as the fold looks ahead, for a change that does not end)."""
        trials = self._trials_changed(catalog)
        starts = [t.period.start for t in trials]
        ends = [t.period.end or reach for t in trials]
        for rule in self.rules:
            before = catalog.rules[rule.id].parameters
            changed = [day for name, p in rule.parameters.items() for day, v in p.values.items()
                       if name not in before or before[name].values.get(day) != v]
            changed += [day for name, p in before.items() for day in p.values
                        if name not in rule.parameters or day not in rule.parameters[name].values]
            starts += [min(changed)] if changed else []
            ends.append(reach)
        if not starts:  # nothing changed: every trial's time, to compare with
            starts = [t.period.start for t in catalog.trials.values()]
        return min(starts, default=reach).replace(day=1), min(max(ends, default=reach), reach)

    def _trials_changed(self, catalog: Catalog) -> list[Trial]:
        """The trials it adds or changes, as it has them, and those it changes or leaves out, as the
        catalog has them."""
        return [*self.trials, *(catalog.trials[t] for t in self.without_trials),
                *(catalog.trials[t.id] for t in self.trials if t.id in catalog.trials)]


def rules_changed(today: Catalog, scenario: Catalog) -> frozenset[str]:
    """The rules whose obligations a scenario's catalog can change: the rule itself, or the trials
    touching it (the fold derives each rule's occurrences on their own)."""
    return frozenset(rule for rule in scenario.rules if scenario.rules[rule] != today.rules.get(rule)
                     or scenario.trials_touching(rule) != today.trials_touching(rule))


def _parameters_unlike(where: str, rule: Rule, today: Rule) -> list[tuple[str, str]]:
    """Where a changed rule's parameter values are not of the kind the catalog's are: the
    parameters it has, each value shaped as one in force (a count a positive whole number, a
    duration a duration, a mapping of the keys it has), so that the fold can count with them."""
    errors = []
    for name, parameter in rule.parameters.items():
        if name not in today.parameters:
            errors.append((f"{where}.parameters.{name}", f"{rule.id} has no such parameter"))
            continue
        examples = [v.value for v in today.parameters[name].values.values() if v.value is not None]
        for day, entry in parameter.values.items():
            if entry.value is not None and examples and (why := _unlike(entry.value, examples)):
                errors.append((f"{where}.parameters.{name}.values.{day}", why))
    return errors


def _unlike(value: Any, examples: list[Any]) -> str | None:
    """Why `value` is not of the kind of the `examples` (values the catalog has had), or None."""
    example = examples[0]
    if isinstance(example, bool) or not isinstance(example, int | str | dict | list):
        return None if type(value) is type(example) else f"must be {type(example).__name__}"
    if isinstance(example, int):
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be a whole number"
        return None if value > 0 or min(examples) <= 0 else "must be above 0"
    if isinstance(example, str):
        try:
            parse_duration(example)
        except ValueError:
            return None if isinstance(value, str) else "must be text"
        try:
            parse_duration(value if isinstance(value, str) else "")
            return None
        except ValueError:
            return "must be a duration like 7d, 8w, 3m or 1m15d"
    if isinstance(example, list):
        if not isinstance(value, list):
            return "must be a list"
        items = [item for e in examples for item in e]
        return next((why for item in value if items and (why := _unlike(item, items))), None)
    if not isinstance(value, dict):
        return "must be a mapping"
    keys = {key: [e[key] for e in examples if key in e] for e in examples for key in e}
    unknown = sorted(set(value) - set(keys))
    if unknown:
        return f"has no key {unknown[0]} (it has {', '.join(sorted(keys))})"
    return next((f"{key}: {why}" for key, item in value.items()
                 if item is not None and (examples_ := [x for x in keys[key] if x is not None])
                 and (why := _unlike(item, examples_))), None)


@dataclass(frozen=True)
class Run:
    """What one run folds and counts: both catalogs, the months, today, the rules counted (None:
    all, for a scenario that changes none: `rules_changed`)."""

    today: Catalog
    scenario: Catalog
    first: date
    last: date
    as_of: date
    rules: frozenset[str] | None = None


@dataclass
class Cells:
    """Per (municipality, month, rule): the numbers (NUMBERS) and the citizens behind each and
    those affected."""

    numbers: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 4))
    citizens: dict[tuple[str, str, str], list[set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: [set() for _ in range(5)]))
    cases: int = 0

    def add(self, citizen: str, today: Iterable[Obligation], scenario: Iterable[Obligation], run: Run) -> None:
        mine: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 4)
        first, last, rules = run.first, run.last, run.rules
        for obligations, required, waived in ((today, REQUIRED_TODAY, WAIVED_TODAY),
                                              (scenario, REQUIRED_SCENARIO, WAIVED_SCENARIO)):
            for o in obligations:
                if o.municipality is None or not first <= o.due <= last or (rules is not None and o.rule not in rules):
                    continue
                numbers = mine[(o.municipality, f"{o.due:%Y-%m}", o.rule)]
                if o.basis == "required":
                    numbers[required] += 1
                else:
                    numbers[waived] += 1
        for key, numbers in mine.items():
            kept, who = self.numbers[key], self.citizens[key]
            for i, n in enumerate(numbers):
                kept[i] += n
                if n:
                    who[i].add(citizen)
            if numbers[REQUIRED_TODAY] != numbers[REQUIRED_SCENARIO] or numbers[WAIVED_TODAY] != numbers[WAIVED_SCENARIO]:
                who[AFFECTED].add(citizen)
        self.cases += 1

    def merge(self, other: "Cells") -> None:
        for key, numbers in other.numbers.items():
            kept, who = self.numbers[key], self.citizens[key]
            for i, n in enumerate(numbers):
                kept[i] += n
            for i, citizens_ in enumerate(other.citizens[key]):
                who[i] |= citizens_
        self.cases += other.cases


def touched_cases(engine: Engine, places: frozenset[str] | None) -> list[str]:
    """The cases ever the responsibility of one of these municipalities (all, for None) whose
    events are kept (an erased case's are not: its facts stay under another id, unfoldable)."""
    r = responsibility
    query = select(r.c.case_id).distinct().where(~r.c.case_id.startswith(ANONYMOUS))
    if places is not None:
        query = query.where(r.c.municipality.in_(sorted(places)))
    with engine.connect() as conn:
        return sorted(conn.execute(query).scalars())


def fold_cases(engine: Engine, run: Run, case_ids: Sequence[str]) -> Cells:
    """The cells of these cases: each folded under the catalog in force for the rules counted, and
    under the scenario only for the rules it changes (a rule itself, or the trials touching it):
    the fold derives each rule's occurrences on their own, so the others' are those in force."""
    changed = rules_changed(run.today, run.scenario)
    counted = run.today.rules if run.rules is None else run.rules
    today_ = Catalog({rule: run.today.rules[rule] for rule in counted if rule in run.today.rules}, run.today.trials)
    scenario = Catalog({rule: run.scenario.rules[rule] for rule in changed}, run.scenario.trials)
    _, _, e, _, _ = store_tables("reporting")
    cells = Cells()
    with engine.connect() as conn:
        through_keys(conn)
        histories = stored_histories(conn, e, list(case_ids))
        citizen_of = dict(conn.execute(select(citizens.c.case_id, citizens.c.citizen)
                                       .where(citizens.c.case_id.in_(list(case_ids)))).all())
    for case_id, events in histories.items():
        if events[-1].name == ERASED:
            continue
        timeline = Timeline.build(events)
        horizon = max(timeline.last_date or run.as_of, run.as_of) + HORIZON  # as the store's own
        today = fold_timeline(timeline, today_, horizon, trials=True, complete=True)
        cells.add(citizen_of.get(case_id, case_id),  # a case without a citizen counts as one, as in the evaluation
                  today,
                  [o for o in today if o.rule not in changed]
                  + (fold_timeline(timeline, scenario, horizon, trials=True, complete=True) if changed else []), run)
    return cells


_worker_engines: dict[str, Engine] = {}


def fold_cases_in_worker(job: tuple[str, Run, Sequence[str]]) -> Cells:
    url, run, case_ids = job
    if url not in _worker_engines:
        _worker_engines[url] = create_engine(url, pool_pre_ping=True)
    cells = fold_cases(_worker_engines[url], run, case_ids)
    # plain dicts back to the caller: a defaultdict's factory (a lambda) does not pickle
    return Cells(dict(cells.numbers), dict(cells.citizens), cells.cases)


def simulate(engine: Engine, run: Run, case_ids: Sequence[str], pool: Executor | None,
             progress: Callable[[float], None]) -> Cells:
    """The cells of these cases, folded at most `CHUNK` at a time, reporting the share done
    after each chunk. With `pool`, in its processes; this thread folds too, from the last chunk
    back, until one of them answers: the first scenario after a start does not wait for them
    to spawn, and later ones hold this process (and its requests) for a chunk at most."""
    size = max(1, min(CHUNK, -(-len(case_ids) // 8)))  # 8 chunks at least: a small scenario is shared out too
    chunks = [case_ids[i:i + size] for i in range(0, len(case_ids), size)]
    cells = Cells()
    folded = 0

    def add(part: Cells) -> None:
        nonlocal folded
        cells.merge(part)
        folded += 1
        progress(folded / len(chunks))

    if pool is None:
        for chunk in chunks:
            add(fold_cases(engine, run, chunk))
        return cells
    url = engine.url.render_as_string(hide_password=False)
    futures = [pool.submit(fold_cases_in_worker, (url, run, chunk)) for chunk in chunks]
    for future, chunk in zip(reversed(futures), reversed(chunks)):
        if any(f.done() and not f.cancelled() for f in futures) or not future.cancel():
            break  # a process answered, or has this chunk already
        add(fold_cases(engine, run, chunk))
    for future in as_completed(f for f in futures if not f.cancelled()):
        add(future.result())
    return cells


def months_between(first: date, last: date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return months


def counted(first: date, last: date, reach: date) -> tuple[date, date]:
    """The days counted for months asked from `first` to `last`: whole calendar years (the blocks
    discretion protects: a total over other months would differ from another answer's by a
    month), up to as far as the fold looks ahead."""
    return date(first.year, 1, 1), min(date(last.year, 12, 31), reach)


def answer(cells: Cells, run: Run, scenario: Scenario, places: frozenset[str] | None) -> dict[str, Any]:
    """The answer: per municipality its months, years and rules, and the total by rule; every
    cell `{numbers..., obligations_freed, hours_freed, citizens_affected, suppressed}`, discreet."""
    minutes = {rule: r.minutes_per_obligation or 0 for rule, r in run.scenario.rules.items()}
    by_cell: dict[tuple, tuple[list[int], list[set[str]]]] = {}

    def add(key: tuple, numbers: list[int], who: list[set[str]], rule: str) -> None:
        kept = by_cell.setdefault(key, ([0] * 5, [set() for _ in range(5)]))
        for i, n in enumerate(numbers):
            kept[0][i] += n
        kept[0][MINUTES_FREED] += (numbers[REQUIRED_TODAY] - numbers[REQUIRED_SCENARIO]) * minutes.get(rule, 0)
        for i, citizens_ in enumerate(who):
            kept[1][i] |= citizens_

    for (place, month, rule), numbers in cells.numbers.items():
        who = cells.citizens[(place, month, rule)]
        for key in ((place, month, rule), (place, month, None), (place, month[:4], rule), (place, month[:4], None),
                    (place, None, rule), (place, None, None), (None, None, rule), (None, None, None)):
            add(key, numbers, who, rule)
    months = months_between(run.first, run.last)
    years = sorted({m[:4] for m in months})
    shown = sorted({key[0] for key in by_cell if key[0]} | (places or set()))
    rules = sorted({key[2] for key in by_cell if key[2]})
    hidden = protected(by_cell, shown, years, months, rules)
    today_month = f"{run.as_of:%Y-%m}"
    names = municipalities()

    def cell(key: tuple, **extra: Any) -> dict[str, Any]:
        numbers, who = by_cell.get(key, ([0] * 5, [set() for _ in range(5)]))
        if key in hidden:
            return {**extra, **dict.fromkeys(NUMBERS), "obligations_freed": None, "hours_freed": None,
                    "citizens_affected": None, "suppressed": True}
        return {**extra, **dict(zip(NUMBERS, numbers)),
                "obligations_freed": numbers[REQUIRED_TODAY] - numbers[REQUIRED_SCENARIO],
                "hours_freed": round(numbers[MINUTES_FREED] / 60, 2), "citizens_affected": len(who[AFFECTED]),
                "suppressed": False}

    return {
        "title": scenario.title,
        "as_of": run.as_of.isoformat(),
        "from": run.first.isoformat(),
        "to": run.last.isoformat(),
        "projected_from": months_between(run.as_of, run.as_of)[0] if run.as_of <= run.last else None,
        "reaches": (run.as_of + HORIZON).isoformat(),
        "assumes": ASSUMES,
        "cases_folded": cells.cases,
        "minutes_per_obligation": {rule: minutes.get(rule, 0) for rule in rules},
        "total": {**cell((None, None, None)), "rules": [cell((None, None, r), rule=r) for r in rules]},
        "municipalities": [{**cell((p, None, None)), "municipality": p, "name": names.get(p, p),
                            "rules": [cell((p, None, r), rule=r) for r in rules],
                            "years": [cell((p, y, None), year=y) for y in years],
                            "months": [cell((p, m, None), month=m, projected=m > today_month) for m in months]}
                           for p in shown],
    }


def protected(cells: dict[tuple, tuple[list[int], list[set[str]]]], places: list[str], years: list[str],
              months: list[str], rules: list[str]) -> set[tuple]:
    """The cells (place, month or year or None, rule or None) to hide. First those with 1-4
    citizens behind a number. Then every sum over a part the asker chooses (the municipalities
    and the rules a scenario touches, the years asked) that has a hidden part: another answer's
    sum could leave that part out, and the difference would give it away. Within a year its
    months are fixed: there the published month with the fewest citizens is hidden too (the year
    when none is left) while a hidden one could be recovered from the year, alone or of fewer
    than 5 citizens together."""

    def behind(who: Iterable[set[str]]) -> int:
        return min((len(w) for w in who if w), default=0)

    def citizens_of(key: tuple) -> list[set[str]]:
        return cells[key][1] if key in cells else []

    sums: dict[tuple, list[tuple]] = {}  # a sum and every part of it, in any of its decompositions
    for place in [*places, None]:
        for period in ([*months, *years, None] if place else [None]):
            for rule in [*rules, None]:
                parts = [(place, period, r) for r in rules] if rule is None else []
                if period is None and place is not None:
                    parts += [(place, year, rule) for year in years]
                if place is None:
                    parts += [(p, None, rule) for p in places]
                if parts:
                    sums[(place, period, rule)] = parts
    lines = [[(p, m, r) for m in months if m.startswith(year)] + [(p, year, r)]
             for p in places for r in [*rules, None] for year in years]

    def gives_away(line: list[tuple]) -> bool:
        *parts, total = line
        hidden_parts = [key for key in parts if key in hidden]
        if total in hidden:
            return not hidden_parts
        together = [set().union(*sets) for sets in zip(*(citizens_of(k) for k in hidden_parts if k in cells))]
        return len(hidden_parts) == 1 or 0 < behind(together) < SUPPRESS_BELOW

    hidden = {key for key in cells if 0 < behind(citizens_of(key)) < SUPPRESS_BELOW}
    changed = True
    while changed:
        changed = False
        for key, parts in sums.items():
            if key not in hidden and any(part in hidden for part in parts):
                hidden.add(key)
                changed = True
        for line in lines:
            if not gives_away(line):
                continue
            others = [key for key in line if key not in hidden and behind(citizens_of(key)) > 0]
            if others:  # a month before the year, the one with the fewest citizens
                hidden.add(min(others, key=lambda key: (key == line[-1], behind(citizens_of(key)))))
                changed = True
    return hidden


STALE = timedelta(minutes=10)  # a running job not heard of for this long was interrupted (its process ended)
WAITING = 4  # jobs queued at most; more are refused (503) until one ends


class Busy(Exception):
    pass


class WhatIfs:
    """The scenarios asked and their answers, in the reporting store's database; one runs at a
    time, in a thread of its own (its folds in `pool`'s processes when given)."""

    def __init__(self, engine: Engine, pool: Executor | None) -> None:
        self.engine, self.pool = engine, pool
        self._runner = ThreadPoolExecutor(1, "what-if")
        self._running: list[Future] = []
        self._queue = Lock()  # requests are answered in several threads at once

    def start(self, request: dict[str, Any], scenario: Scenario, run: Run, places: frozenset[str] | None,
              requested_by: str) -> tuple[str, Future]:
        """Store the request and start folding; Busy when WAITING jobs wait already."""
        with self._queue:
            self._running = [f for f in self._running if not f.done()]
            if len(self._running) >= WAITING:
                raise Busy()
            job, now = str(uuid4()), datetime.now(UTC)
            with self.engine.begin() as conn:
                conn.execute(insert(what_if).values(id=job, requested_by=requested_by, requested_at=now,
                                                    request=request, status="running", progress=0.0, updated_at=now))
            future = self._runner.submit(self._run, job, scenario, run, places)
            self._running.append(future)
            return job, future

    def _run(self, job: str, scenario: Scenario, run: Run, places: frozenset[str] | None) -> None:
        def progress(share: float) -> None:
            self._update(job, progress=share)

        try:
            cells = simulate(self.engine, run, touched_cases(self.engine, places), self.pool, progress)
            self._update(job, status="done", progress=1.0, result=answer(cells, run, scenario, places))
        except Exception as exc:
            log.exception("what-if %s failed", job)
            self._update(job, status="failed", error=f"{type(exc).__name__}: {exc}"[:1000])

    def _update(self, job: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(what_if).where(what_if.c.id == job).values(**values, updated_at=datetime.now(UTC)))

    def get(self, job: str) -> dict[str, Any] | None:
        try:
            UUID(job)
        except ValueError:  # no job's id (one with a NUL the database would refuse, too)
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(what_if).where(what_if.c.id == job)).first()
        if row is None:
            return None
        status, error = row.status, row.error
        if status == "running" and datetime.now(UTC) - _utc(row.updated_at) > STALE:
            status, error = "failed", "interrupted: the service stopped while it ran; post the request again"
        return {"id": row.id, "status": status, "progress": round(row.progress, 3), "requested_by": row.requested_by,
                "requested_at": _utc(row.requested_at).isoformat(), "request": row.request, "error": error,
                "result": row.result}

    def close(self) -> None:
        self._runner.shutdown(wait=False, cancel_futures=True)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps no time zone
