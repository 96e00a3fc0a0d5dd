"""What-if: a scenario, a change to the catalog in the catalog's own format (a draft trial, a
trial changed or left out, a rule's dated parameters changed), folded over the stored histories
of the cases it can change, beside the catalog in force. Nothing stored is changed: both folds
run in memory over the reporting store's events.

Counted per municipality (responsible on the due date), month of the due date and rule: the
obligations required and waived (or suspended) under the catalog in force ("today") and under
the scenario, the required ones done by today (for past months: what actually happened), and
the citizens whose obligations differ. Months after today are projected: the fold lists due
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
from typing import Any
from uuid import uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    String,
    Table,
    Text,
    cast,
    create_engine,
    insert,
    select,
    update,
)

from services.reporting.store import ANONYMOUS, HORIZON, citizens, metadata, responsibility
from shared.catalog import Catalog, Rule, Trial
from shared.municipalities import municipalities
from shared.obligations import Obligation, fold_timeline
from shared.projection import ERASED, StoredEvent, store_tables
from shared.timeline import Timeline

log = logging.getLogger(__name__)
SUPPRESS_BELOW = 5  # as the evaluation's
CHUNK = 2000  # cases folded per task
# the numbers of a cell, in this order
REQUIRED_TODAY, REQUIRED_SCENARIO, WAIVED_TODAY, WAIVED_SCENARIO, DONE_TODAY = range(5)
NUMBERS = ("required_today", "required_scenario", "waived_today", "waived_scenario", "done_today")
AFFECTED = 5  # the citizens whose obligations in the cell differ, beside one set per number
ASSUMES = ("Måneder efter i dag er fremskrevet: de sager, der er i dag, med deres ydelser og forløb som de står, "
           "og pligterne som foldningen forudser dem; ingen nye sager, og ingen ændringer ud over scenariet.")

what_if = Table(  # scenarios asked, each with its answer once computed
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
        rules = {**catalog.rules, **{r.id: r for r in self.rules}}
        for i, trial in enumerate(self.trials):
            errors += [(f"trials[{i}].effects[{j}].rule", f"no rule {e.rule} in the catalog")
                       for j, e in enumerate(trial.effects) if e.rule not in rules]
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
        changed = [*self.trials, *(catalog.trials[t] for t in self.without_trials),
                   *(catalog.trials[t.id] for t in self.trials if t.id in catalog.trials)]
        return frozenset(m for trial in changed for m in trial.municipalities)

    def months(self, catalog: Catalog, reach: date) -> tuple[date, date]:
        """The months it can change by default: from the first day a change applies to the last
        (`reach`, as far as the fold looks ahead, for a change that does not end)."""
        trials = [*self.trials, *(catalog.trials[t] for t in self.without_trials),
                  *(catalog.trials[t.id] for t in self.trials if t.id in catalog.trials)]
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


@dataclass
class Cells:
    """Per (municipality, month, rule): the numbers (NUMBERS) and the citizens behind each and
    those affected."""

    numbers: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 5))
    citizens: dict[tuple[str, str, str], list[set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: [set() for _ in range(6)]))
    cases: int = 0

    def add(self, citizen: str, today: Iterable[Obligation], scenario: Iterable[Obligation], first: date, last: date,
            as_of: date) -> None:
        mine: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 5)
        for obligations, required, waived in ((today, REQUIRED_TODAY, WAIVED_TODAY),
                                              (scenario, REQUIRED_SCENARIO, WAIVED_SCENARIO)):
            for o in obligations:
                if o.municipality is None or not first <= o.due <= last:
                    continue
                numbers = mine[(o.municipality, f"{o.due:%Y-%m}", o.rule)]
                if o.basis == "required":
                    numbers[required] += 1
                    if required == REQUIRED_TODAY and o.done_on is not None and o.done_on <= as_of:
                        numbers[DONE_TODAY] += 1
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


@dataclass(frozen=True)
class Run:
    """What one run folds: both catalogs, the months, today."""

    today: Catalog
    scenario: Catalog
    first: date
    last: date
    as_of: date


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
    """The cells of these cases: each folded under the catalog in force, and under the scenario
    only the rules it changes (a rule itself, or the trials touching it): the fold derives each
    rule's occurrences on their own, so the others' are those in force."""
    changed = [rule for rule in run.scenario.rules if run.scenario.rules[rule] != run.today.rules.get(rule)
               or run.scenario.trials_touching(rule) != run.today.trials_touching(rule)]
    scenario = Catalog({rule: run.scenario.rules[rule] for rule in changed}, run.scenario.trials)
    _, _, e, _, _ = store_tables("reporting")
    cells = Cells()
    histories: dict[str, list[StoredEvent]] = defaultdict(list)
    with engine.connect() as conn:
        # as `stored_histories`, but each event's data read as text and parsed by orjson: that
        # takes a third of the CPU time the driver's JSON parsing does, a scenario reads every event
        for case_id, name, data, permitted_by in conn.execute(
                select(e.c.case_id, e.c.name, cast(e.c.data, Text), e.c.permitted_by)
                .where(e.c.case_id.in_(list(case_ids))).order_by(e.c.case_id, e.c.sequence)):
            histories[case_id].append(StoredEvent(name, orjson.loads(data), permitted_by))
        citizen_of = dict(conn.execute(select(citizens.c.case_id, citizens.c.citizen)
                                       .where(citizens.c.case_id.in_(list(case_ids)))).all())
    for case_id, events in histories.items():
        if events[-1].name == ERASED:
            continue
        timeline = Timeline.build(events)
        horizon = max(timeline.last_date or run.as_of, run.as_of) + HORIZON  # as the store's own
        today = fold_timeline(timeline, run.today, horizon, trials=True, complete=True)
        cells.add(citizen_of.get(case_id, case_id),  # a case without a citizen counts as one, as in the evaluation
                  today,
                  [o for o in today if o.rule not in scenario.rules]
                  + fold_timeline(timeline, scenario, horizon, trials=True, complete=True),
                  run.first, run.last, run.as_of)
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


def answer(cells: Cells, run: Run, scenario: Scenario, places: frozenset[str] | None) -> dict[str, Any]:
    """The answer: per municipality its months and its rules, and the total by rule; every cell
    `{numbers..., obligations_freed, hours_freed, citizens_affected, suppressed}`, discreet."""
    minutes = {rule: r.minutes_per_obligation or 0 for rule, r in run.scenario.rules.items()}
    by_cell: dict[tuple, tuple[list[int], list[set[str]]]] = {}

    def add(key: tuple, numbers: list[int], who: list[set[str]], rule: str) -> None:
        kept = by_cell.setdefault(key, ([0] * 6, [set() for _ in range(6)]))
        for i, n in enumerate(numbers):
            kept[0][i] += n
        kept[0][5] += (numbers[REQUIRED_TODAY] - numbers[REQUIRED_SCENARIO]) * minutes.get(rule, 0)
        for i, citizens_ in enumerate(who):
            kept[1][i] |= citizens_

    for (place, month, rule), numbers in cells.numbers.items():
        who = cells.citizens[(place, month, rule)]
        for key in ((place, month, None), (place, None, rule), (place, None, None), (None, None, rule),
                    (None, None, None)):
            add(key, numbers, who, rule)
    months = months_between(run.first, run.last)
    shown = sorted({key[0] for key in by_cell if key[0]} | (places or set()))
    rules = sorted({key[2] for key in by_cell if key[2]})
    lines = ([[(p, m, None) for m in months] + [(p, None, None)] for p in shown]
             + [[(p, None, r) for r in rules] + [(p, None, None)] for p in shown]
             + [[(p, None, None) for p in shown] + [(None, None, None)]]
             + [[(None, None, r) for r in rules] + [(None, None, None)]]
             + [[(p, None, r) for p in shown] + [(None, None, r)] for r in rules])
    hidden = protected(by_cell, lines)
    today_month = f"{run.as_of:%Y-%m}"
    names = municipalities()

    def cell(key: tuple, **extra: Any) -> dict[str, Any]:
        numbers, who = by_cell.get(key, ([0] * 6, [set() for _ in range(6)]))
        if key in hidden:
            return {**extra, **dict.fromkeys(NUMBERS), "obligations_freed": None, "hours_freed": None,
                    "citizens_affected": None, "suppressed": True}
        values = dict(zip(NUMBERS, numbers))
        if key[1] is not None and key[1] > today_month:
            values["done_today"] = None  # not yet happened
        return {**extra, **values, "obligations_freed": numbers[REQUIRED_TODAY] - numbers[REQUIRED_SCENARIO],
                "hours_freed": round(numbers[5] / 60, 2), "citizens_affected": len(who[AFFECTED]), "suppressed": False}

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
                            "months": [cell((p, m, None), month=m, projected=m > today_month) for m in months]}
                           for p in shown],
    }


def protected(cells: dict[tuple, tuple[list[int], list[set[str]]]], lines: list[list[tuple]]) -> set[tuple]:
    """The cells to hide: those with 1-4 citizens behind a number, then in each line (cells and,
    last, their total) where only one is hidden, the published one with the fewest citizens
    too (or the total), until no line has a lone hidden cell."""

    def citizens_behind(key: tuple) -> int:
        who = cells[key][1] if key in cells else []
        return min((len(w) for w in who if w), default=0)

    hidden = {key for key in cells if 0 < citizens_behind(key) < SUPPRESS_BELOW}
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(key in hidden for key in line) != 1:
                continue
            total = line[-1]
            others = [key for key in line if key not in hidden and citizens_behind(key) > 0]
            if others:  # a cell before the total, the one with the fewest citizens
                hidden.add(min(others, key=lambda key: (key == total, citizens_behind(key))))
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

    def start(self, request: dict[str, Any], scenario: Scenario, run: Run, places: frozenset[str] | None,
              requested_by: str) -> tuple[str, Future]:
        """Store the request and start folding; Busy when WAITING jobs wait already."""
        self._running = [f for f in self._running if not f.done()]
        if len(self._running) >= WAITING:
            raise Busy()
        job, now = str(uuid4()), datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(what_if).values(id=job, requested_by=requested_by, requested_at=now, request=request,
                                                status="running", progress=0.0, updated_at=now))
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
        with self.engine.connect() as conn:
            row = conn.execute(select(what_if).where(what_if.c.id == job)).first()
        if row is None:
            return None
        status, error = row.status, row.error
        updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)  # SQLite keeps none
        if status == "running" and datetime.now(UTC) - updated > STALE:
            status, error = "failed", "interrupted: the service stopped while it ran; post the request again"
        return {"id": row.id, "status": status, "progress": round(row.progress, 3), "requested_by": row.requested_by,
                "requested_at": row.requested_at.isoformat(), "request": row.request, "error": error,
                "result": row.result}

    def close(self) -> None:
        self._runner.shutdown(wait=False, cancel_futures=True)
