"""The evaluation numbers against a plain-Python recomputation from the generated events of a
synthetic population (the reporting store in SQLite in memory; no files, no network)."""

import multiprocessing
import threading
import time
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.reporting import evaluation as evaluation_module
from services.reporting import facts as facts_module
from services.reporting.bootstrap import ReportingService
from services.reporting.evaluation import (
    BOOTSTRAP_REPLICATES,
    RESAMPLED_UP_TO,
    Cell,
    PeriodError,
    Row,
    Spread,
    comparison_default,
    evaluate,
    periods_for,
    resampled_sums,
    series,
)
from services.reporting.facts import FactParts
from services.reporting.store import ReportingStore
from shared import cpr
from shared.catalog import Catalog, add_duration
from shared.events import StreamEvent
from shared.obligations import fold
from shared.population import Population
from shared.stream import Delivery
from tests.built import built
from tests.facts_compare import same_facts

CATALOG = Catalog.load()
TODAY = date(2023, 6, 1)
T11 = CATALOG.trials["T11"]


def stream_events(documents: list[dict]) -> list[StreamEvent]:
    events = []
    for sequence, d in enumerate(documents, start=1):
        data = dict(d["data"])
        if "cpr" in data:
            data["citizen"] = cpr.pseudonym(data.pop("cpr"), b"test")
        events.append(StreamEvent(d["id"], d["source"], d["type"], d["subject"], d["time"], data, sequence, 0))
    return events


def stored(histories) -> FactParts:
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    deliveries = [Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)]
    for start in range(0, len(deliveries), 5000):
        store.store(deliveries[start:start + 5000])
    store.refresh()
    return FactParts.load(engine)


@pytest.fixture(scope="module")
def population():
    def build():
        histories = [stream_events(docs) for docs in Population(seed=11, start=date(2016, 1, 1)).cases(1500)]
        return histories, stored(histories)
    return built("population", (11, 1500), build)


@pytest.fixture(scope="module")
def world(population):
    histories, facts = population
    periods = periods_for(T11, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    comparison = comparison_default(facts, CATALOG, T11, periods)[0]
    rows = evaluate(facts, CATALOG, T11, periods, comparison)
    return histories, periods, comparison, {(r.metric, r.rule or r.of, r.group, r.period, r.municipality): r for r in rows}


def responsible(history, day: date) -> str | None:
    """Plain recomputation: the municipality of the latest opening or move on or before `day`."""
    moves = sorted((e.data["date"], i, e.data["municipality"]) for i, e in enumerate(history)
                   if e.name in ("case.opened", "case.moved"))
    current = None
    for when, _, municipality in moves:
        if date.fromisoformat(when) <= day:
            current = municipality
    return current


def ly_spells(history):
    spells, start = [], None
    closed = next((date.fromisoformat(e.data["date"]) for e in history if e.name == "case.closed"), None)
    for e in history:
        if e.data.get("benefit") == "ledighedsydelse":
            if e.name == "benefit.started":
                start = date.fromisoformat(e.data["date"])
            elif e.name == "benefit.ended" and start:
                spells.append((start, date.fromisoformat(e.data["date"])))
                start = None
    if start:
        spells.append((start, closed))
    return spells


def groups(comparison):
    return {"trial": set(T11.municipalities), "comparison": set(comparison)}


def expect(rows, metric, group, period, value, n, rule=None):
    row = rows[(metric, rule, group, period, None)]
    if n == 0 and not row.suppressed:  # nothing: a zero reveals no one
        assert (row.value, row.n) == (0, 0), (metric, group, period)
    elif n < 5 or row.suppressed:  # suppressed, or hidden to protect a suppressed cell
        assert row.value is None and row.n is None and row.suppressed
    else:
        assert row.n == n, (metric, group, period)
        assert row.value == pytest.approx(value, abs=0.01), (metric, group, period)


def test_ly_spells_ended_and_their_mean_length(world):
    histories, periods, comparison, rows = world
    for group, members in groups(comparison).items():
        for period, (lo, hi) in periods.items():
            lengths, who = [], set()
            for h in histories:
                for start, end in ly_spells(h):
                    if end and lo <= end <= hi and responsible(h, end) in members:
                        lengths.append((end - start).days + 1)
                        who.add(h[0].data["citizen"])
            expect(rows, "ly_spells_ended", group, period, len(lengths), len(who))
            if lengths:
                expect(rows, "ly_avg_spell_days", group, period, sum(lengths) / len(lengths), len(who))


def test_ly_over_18_months_at_start_and_end(world):
    histories, periods, comparison, rows = world
    for group, members in groups(comparison).items():
        for period, (lo, hi) in periods.items():
            for metric, day in (("ly_over_18m_at_start", lo), ("ly_over_18m_at_end", hi)):
                who = {h[0].data["citizen"] for h in histories for start, end in ly_spells(h)
                       if start <= day and (end is None or day <= end) and start < add_duration(day, "18m", sign=-1)
                       and responsible(h, day) in members}
                if who or (metric, None, group, period, None) in rows:
                    expect(rows, metric, group, period, len(who), len(who))


def test_reassessments_required_ordinary_required_and_waived(world):
    histories, periods, comparison, rows = world
    for group, members in groups(comparison).items():
        for period, (lo, hi) in periods.items():
            counts, who = defaultdict(int), defaultdict(set)
            for h in histories:
                horizon = max(max(date.fromisoformat(e.data["date"]) for e in h), TODAY) + timedelta(days=400)
                for regime, trials in (("ordinary", False), ("trials", True)):
                    for o in fold(h, CATALOG, horizon, trials=trials):
                        if o.rule == "LAS-74c" and lo <= o.due <= hi and o.municipality in members:
                            if regime == "ordinary" or o.basis == "required":
                                counts[regime] += 1
                                who[regime].add(h[0].data["citizen"])
                            elif o.basis == "waived" and o.exemption.trial == "T11":
                                counts["waived"] += 1
                                who["waived"].add(h[0].data["citizen"])
            if who["ordinary"]:
                expect(rows, "obligations_required_ordinary", group, period, counts["ordinary"], len(who["ordinary"]), "LAS-74c")
                expect(rows, "obligations_waived", group, period, counts["waived"], len(who["waived"]), "LAS-74c")
    waived = rows[("obligations_waived", "LAS-74c", "trial", "trial", None)]
    assert waived.value and waived.value > 0  # T11 waived re-assessments in its municipalities
    assert rows[("obligations_waived", "LAS-74c", "comparison", "trial", None)].value == 0


@pytest.mark.parametrize("benefits, metric", [(None, "exits_to_job_share"),
                                               ({"ressourceforloeb"}, "exits_to_job_share_ressourceforloeb")])
def test_exits_to_job_share(world, benefits, metric):
    histories, periods, comparison, rows = world
    for group, members in groups(comparison).items():
        for period, (lo, hi) in periods.items():
            on_benefit, exited = set(), set()
            for h in histories:
                citizen = h[0].data["citizen"]
                starts = {}
                closed = next((date.fromisoformat(e.data["date"]) for e in h if e.name == "case.closed"), None)
                spells = []
                for e in h:
                    if e.name == "benefit.started" and (benefits is None or e.data["benefit"] in benefits):
                        starts[e.data["benefit"]] = date.fromisoformat(e.data["date"])
                    elif e.name == "benefit.ended" and e.data["benefit"] in starts:
                        spells.append((starts.pop(e.data["benefit"]), date.fromisoformat(e.data["date"])))
                spells += [(s, closed or hi) for s in starts.values()]
                days = [max(s, lo) + timedelta(days=k) for s, end in spells for k in range((min(end, hi) - max(s, lo)).days + 1)
                        if max(s, lo) <= min(end, hi)]
                if any(responsible(h, d) in members for d in days):
                    on_benefit.add(citizen)
                    for e in h:
                        day = date.fromisoformat(e.data["date"])
                        counted = (e.name == "case.closed" and benefits is None) or \
                            (e.name == "benefit.ended" and (benefits is None or e.data["benefit"] in benefits))
                        if counted and e.data.get("reason") == "job" and lo <= day <= hi and responsible(h, day) in members:
                            exited.add(citizen)
            if on_benefit:
                expect(rows, metric, group, period, len(exited & on_benefit) / len(on_benefit), len(on_benefit))


def test_difference_in_differences_with_a_bootstrap_interval(world):
    _, _, _, rows = world
    did = {key[1]: r for key, r in rows.items() if key[0] == "did_estimate"}
    assert set(did) >= {"ly_avg_spell_days", "exits_to_job_share", "conversations_held_per_100_months"}
    for metric, row in did.items():
        if row.suppressed:
            continue
        v = {key: rows[(metric, None, *key, None)].value for key in (("trial", "trial"), ("trial", "baseline"),
                                                                   ("comparison", "trial"), ("comparison", "baseline"))}
        expected = (v[("trial", "trial")] - v[("trial", "baseline")]) - (v[("comparison", "trial")] - v[("comparison", "baseline")])
        assert row.value == pytest.approx(expected, abs=0.01), metric
        low, high = row.ci95
        assert low < high and low - 0.05 <= row.value <= high + 0.05, metric


def test_every_row_under_5_citizens_is_suppressed(world):
    _, _, _, rows = world
    assert rows
    for row in rows.values():
        if row.suppressed:  # neither the value nor the count of citizens behind it
            assert row.value is None and row.n is None
        else:
            assert row.n == 0 or row.n >= 5


def ly_citizen(case_id: str, municipality: str, serial: int) -> list[StreamEvent]:
    return stream_events([
        {"id": f"{case_id}-{i}", "source": "t", "type": f"dk.frisag.{name}", "subject": case_id, "time": None, "data": data}
        for i, (name, data) in enumerate([
            ("case.opened", {"cpr": f"010170-{serial:04d}", "municipality": municipality, "date": "2019-01-01"}),
            ("benefit.started", {"benefit": "ledighedsydelse", "date": "2019-01-01"}),
            ("benefit.ended", {"benefit": "ledighedsydelse", "date": "2019-06-30", "reason": "job"}),
        ])])


def evaluated(histories, trial=T11, comparison=("751",), lo=date(2019, 1, 1), hi=date(2019, 12, 31)):
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    store.store([Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)])
    store.refresh()
    periods = periods_for(T11, lo, hi, TODAY)
    return {(r.metric, r.group, r.period, r.municipality): r
            for r in evaluate(FactParts.load(engine), CATALOG, trial, periods, list(comparison))}


def test_a_municipality_with_3_citizens_is_suppressed_and_they_count_in_a_total_of_5_or_more():
    histories = [ly_citizen(f"rebild-{i}", "840", i) for i in range(3)] + [ly_citizen(f"aalborg-{i}", "851", 10 + i) for i in range(3)]
    rows = evaluated(histories)
    for metric in ("ly_spells_ended", "ly_over_18m_at_end", "ly_avg_spell_days"):
        for place in ("840", "851"):
            cell = rows.get((metric, "trial", "trial", place))
            if cell:  # neither the value nor the citizens behind it: for a count of citizens they are the same
                assert (cell.value, cell.n, cell.suppressed) == (None, None, True), (metric, place)
    total = rows[("ly_spells_ended", "trial", "trial", None)]
    assert (total.value, total.n, total.suppressed) == (6, 6, False)
    assert rows[("ly_avg_spell_days", "trial", "trial", None)].value == 181
    # with only the 3 in Rebild, the total is suppressed too
    only_rebild = evaluated(histories, CATALOG.trials["T11"].model_copy(update={"municipalities": ["840"]}))
    assert only_rebild[("ly_spells_ended", "trial", "trial", None)].suppressed


def test_a_lone_suppressed_municipality_cannot_be_recovered_from_the_total():
    """3 in Rebild, 6 in Aalborg: published, Aalborg's 6 and the total 9 would give Rebild's 3."""
    histories = [ly_citizen(f"rebild-{i}", "840", i) for i in range(3)] + [ly_citizen(f"aalborg-{i}", "851", 10 + i) for i in range(6)]
    rows = evaluated(histories)
    rebild, aalborg = rows[("ly_spells_ended", "trial", "trial", "840")], rows[("ly_spells_ended", "trial", "trial", "851")]
    total = rows[("ly_spells_ended", "trial", "trial", None)]
    assert rebild.suppressed and (aalborg.suppressed or total.suppressed)
    assert not any(r.value == 3 or r.n == 3 for r in (aalborg, total))


def benefit_days(history, lo: date, hi: date, members: set[str]) -> dict[str, int]:
    """Plain recomputation: days on any benefit in [lo, hi], per responsible municipality."""
    closed = next((date.fromisoformat(e.data["date"]) for e in history if e.name == "case.closed"), None)
    starts, spells = {}, []
    for e in history:
        if e.name == "benefit.started":
            starts[e.data["benefit"]] = date.fromisoformat(e.data["date"])
        elif e.name == "benefit.ended" and e.data["benefit"] in starts:
            spells.append((starts.pop(e.data["benefit"]), date.fromisoformat(e.data["date"])))
    spells += [(s, closed or hi) for s in starts.values()]
    days: dict[str, int] = defaultdict(int)
    for s, end in spells:
        day = max(s, lo)
        while day <= min(end, hi):
            if (m := responsible(history, day)) in members:
                days[m] += 1
            day += timedelta(days=1)
    return days


def test_conversations_per_100_months_on_benefit(world):
    histories, periods, comparison, rows = world
    for group, members in groups(comparison).items():
        for period, (lo, hi) in periods.items():
            per_case = {h[0].subject: benefit_days(h, lo, hi, members) for h in histories}
            places = defaultdict(set)  # per citizen: where on a benefit in the period, of all their cases
            for h in histories:
                places[h[0].data["citizen"]] |= set(per_case[h[0].subject])
            total_days = sum(sum(d.values()) for d in per_case.values())
            who = {h[0].data["citizen"] for h in histories if per_case[h[0].subject]}
            talks = sum(1 for h in histories for e in h if e.name == "conversation.held"
                        and lo <= date.fromisoformat(e.data["date"]) <= hi
                        and responsible(h, date.fromisoformat(e.data["date"])) in places[h[0].data["citizen"]])
            expect(rows, "conversations_held_per_100_months", group, period,
                   100 * talks / (total_days / (365.25 / 12)), len(who))


def test_obligations_required_on_time_and_the_hours_freed(world):
    """Of the rules T11 changes; the hours freed are those of the obligations T11 itself waived."""
    histories, periods, comparison, rows = world
    touched = {e.rule for e in T11.effects if e.effect != "permit"}
    for group, members in groups(comparison).items():
        for period, (lo, hi) in periods.items():
            required, on_time, who_on_time = defaultdict(int), 0, set()
            who_required = defaultdict(set)
            hours = 0.0
            for h in histories:
                # the full count: every occurrence the rules required, missed ones too
                horizon = max(max(date.fromisoformat(e.data["date"]) for e in h), TODAY) + timedelta(days=400)
                for o in fold(h, CATALOG, horizon, complete=True):
                    if not (lo <= o.due <= hi and o.municipality in members):
                        continue
                    if o.basis == "required" and o.rule in touched:
                        required[o.rule] += 1
                        who_required[o.rule].add(h[0].data["citizen"])
                        on_time += o.done_on is not None and o.done_on <= o.deadline
                        who_on_time.add(h[0].data["citizen"])
                    elif o.basis != "required" and o.exemption.trial == "T11":
                        hours += (CATALOG.rules[o.rule].minutes_per_obligation or 0) / 60
            for rule, count in required.items():
                expect(rows, "obligations_required", group, period, count, len(who_required[rule]), rule)
            assert {key[1] for key in rows if key[0] == "obligations_required"} <= touched | {None}
            if who_on_time:
                expect(rows, "obligations_on_time_share", group, period, on_time / sum(required.values()), len(who_on_time))
            row = rows[("caseworker_hours_freed", None, group, period, None)]
            assert row.suppressed or row.value == pytest.approx(hours, abs=0.01)
            if group == "comparison" or period == "baseline":
                assert row.value == 0  # T11 waives nothing outside its municipalities and period


@pytest.mark.parametrize("trial", ["T6", "T10", "T11", "T1"])
def test_each_trial_is_credited_only_with_what_its_own_effects_waived(population, trial):
    """T6, T10 and T11 all run in Jammerbugt (849) at once: each trial's hours freed are its own
    waivers' minutes, recomputed in plain Python from the fold; T1 (permits only) frees 0."""
    histories, facts = population
    t = CATALOG.trials[trial]
    periods = periods_for(t, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    comparison = ["101", "751"]
    rows = {(r.metric, r.rule, r.group, r.period, r.municipality): r
            for r in evaluate(facts, CATALOG, t, periods, comparison)}
    lo, hi = periods["trial"]
    hours, waived = defaultdict(float), defaultdict(int)
    for h in histories:
        horizon = max(max(date.fromisoformat(e.data["date"]) for e in h), TODAY) + timedelta(days=400)
        for o in fold(h, CATALOG, horizon, complete=True):
            if lo <= o.due <= hi and o.basis != "required" and o.exemption.trial == trial:
                hours[o.municipality] += (CATALOG.rules[o.rule].minutes_per_obligation or 0) / 60
                waived[o.municipality] += 1
    assert set(hours) <= set(t.municipalities)
    for m in t.municipalities:
        row = rows.get(("caseworker_hours_freed", None, "trial", "trial", m))
        if row is None:
            assert hours[m] == 0
        elif not row.suppressed:
            assert row.value == pytest.approx(hours[m], abs=0.01), m
    total = rows[("caseworker_hours_freed", None, "trial", "trial", None)]
    assert total.value == pytest.approx(sum(hours.values()), abs=0.01)
    if trial == "T1":
        assert total.value == 0
    else:
        assert waived["849"] > 0  # the overlap is exercised
    for group, period in (("comparison", "baseline"), ("comparison", "trial"), ("trial", "baseline")):
        # nothing, or hidden beside a suppressed count of the same obligations
        assert rows[("caseworker_hours_freed", None, group, period, None)].value in (0, None)
    assert all(r.value is None or r.value >= 0 for key, r in rows.items() if key[0] == "caseworker_hours_freed")


def test_the_default_comparison_group_runs_no_trial_on_the_same_obligations(world, population):
    """Issue 15.4: for T11, Hillerød (219: T22, T23), Frederikshavn (813) and Vesthimmerland (820)
    run trials that change obligations during the periods compared; they are left out, and why."""
    _, periods, comparison, _ = world
    _, facts = population
    chosen, excluded, _ = comparison_default(facts, CATALOG, T11, periods)
    assert chosen == comparison and chosen
    assert not set(chosen) & {"219", "813", "820", *T11.municipalities}
    assert {"T22", "T23"} <= set(excluded["219"]) and "T10" in excluded["820"]
    first, last = periods["baseline"][0], periods["trial"][1]
    for m in chosen:  # an independent check from the catalog
        for t in CATALOG.trials.values():
            if t.id != "T11" and m in t.municipalities and t.period.start <= last and (t.period.end or last) >= first:
                assert all(e.effect == "permit" and e.rule != "LAS-74c" for e in t.effects), (m, t.id)


@pytest.mark.parametrize("start, end, field", [
    (date(2016, 1, 1), date(2019, 12, 31), "from"),  # the baseline would overlap the trial
    (date(2018, 6, 30), None, "from"),  # the day before the trial starts
    (date(2019, 1, 1), date(2023, 1, 1), "to"),  # the day after the trial ends
    (date(2019, 1, 1), date(2030, 1, 1), "to"),
])
def test_a_period_outside_the_trial_is_refused(start, end, field):
    with pytest.raises(PeriodError) as refused:
        periods_for(T11, start, end, TODAY)
    assert [f for f, _ in refused.value.errors] == [field]
    # on the boundaries: the trial's first and last day are fine
    assert periods_for(T11, date(2018, 7, 1), date(2022, 12, 31), TODAY)["trial"] == (date(2018, 7, 1), date(2022, 12, 31))


def test_facts_kept_and_refreshed_give_the_numbers_of_facts_read_afresh(monkeypatch):
    """The service keeps its facts and reads again only the cases derived since it looked: after
    more events for some cases, new cases and an erasure, its numbers are those of facts read
    afresh, and only the changed cases were read. After a rebuild it reads everything again."""
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    histories = [stream_events(docs) for docs in Population(seed=5, start=date(2016, 1, 1)).cases(300)]
    offsets = iter(range(10**6))

    def deliver(events):
        store.store([Delivery(0, next(offsets), e) for e in events])
        store.refresh()

    deliver([e for h in histories[:280] for e in h] + [e for h in histories[280:290] for e in h[:len(h) // 2]])
    kept = FactParts.load(engine)
    erased = histories[0][0]
    erasure = StreamEvent("x", "t", "dk.frisag.case.erased", erased.subject, None,
                          {"date": "2023-01-02", "reason": "request"}, len(histories[0]) + 1, 0)
    deliver([e for h in histories[280:290] for e in h[len(h) // 2:]] + [e for h in histories[290:] for e in h] + [erasure])
    read = []
    original = FactParts._load
    monkeypatch.setattr(FactParts, "_load", lambda self, conn, case_ids: read.append(case_ids) or original(self, conn, case_ids))

    refreshed = kept.refreshed(engine)

    assert refreshed.tick > kept.tick and refreshed.anonymous and not kept.anonymous
    assert None not in read and sum(map(len, read)) == 10 + 10 + 1 + 1  # changed, new, erased, kept anonymously
    afresh = FactParts.load(engine)
    for trial in (T11, CATALOG.trials["T2"]):
        periods = periods_for(trial, None, None, TODAY)
        default = comparison_default(afresh, CATALOG, trial, periods)
        assert comparison_default(refreshed, CATALOG, trial, periods) == default
        comparison = default[0]
        assert evaluate(refreshed, CATALOG, trial, periods, comparison) == evaluate(afresh, CATALOG, trial, periods, comparison)
    assert refreshed.refreshed(engine) is refreshed  # nothing derived since

    store.clear()  # a rebuild: everything again, the erased case kept under another new id
    deliver([e for h in histories for e in h] + [erasure])
    rebuilt, afresh = refreshed.refreshed(engine), FactParts.load(engine)
    assert rebuilt.epoch == refreshed.epoch + 1 and rebuilt.anonymous.isdisjoint(refreshed.anonymous)
    periods = periods_for(T11, None, None, TODAY)
    assert evaluate(rebuilt, CATALOG, T11, periods, ["751"]) == evaluate(afresh, CATALOG, T11, periods, ["751"])


def test_cases_read_again_are_kept_beside_the_tables_until_merged(monkeypatch, tmp_path):
    """A refresh of a few cases leaves the sorted tables as they are (a million cases' would be
    copied for each change) and keeps the cases' rows beside them: a case changed twice, new
    cases, then a merge. At each step the numbers, the comparison group, the municipalities and
    every table's rows are those of facts read afresh; so are a snapshot's written meanwhile."""
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    histories = [stream_events(docs) for docs in Population(seed=7, start=date(2016, 1, 1)).cases(200)]
    offsets = iter(range(10**6))
    thirds = [(h[:len(h) // 3], h[len(h) // 3:2 * len(h) // 3], h[2 * len(h) // 3:]) for h in histories[180:190]]

    def deliver(events):
        store.store([Delivery(0, next(offsets), e) for e in events])
        store.refresh()

    def same_as_afresh(facts: FactParts) -> None:
        afresh = FactParts.load(engine)
        same_facts(facts, afresh)
        assert facts.municipalities() == afresh.municipalities()
        for trial in (T11, CATALOG.trials["T2"]):
            periods = periods_for(trial, None, None, TODAY)
            default = comparison_default(afresh, CATALOG, trial, periods)
            assert comparison_default(facts, CATALOG, trial, periods) == default
            assert evaluate(facts, CATALOG, trial, periods, default[0]) == evaluate(afresh, CATALOG, trial, periods,
                                                                                   default[0])

    deliver([e for h in histories[:170] for e in h] + [e for first, _, _ in thirds for e in first])
    kept = FactParts.load(engine)
    monkeypatch.setattr(facts_module, "MERGE_SHARE", 1.0)  # on a few hundred cases, 5 % is a few

    deliver([e for _, second, _ in thirds for e in second] + [e for h in histories[170:175] for e in h])
    once = kept.refreshed(engine)
    (part,) = kept.parts  # a few hundred cases: one part
    assert once.parts[0].tables is part.tables and once.parts[0].recent  # the tables not copied
    same_as_afresh(once)

    deliver([e for _, _, third in thirds for e in third] + [e for h in histories[175:180] for e in h])
    twice = once.refreshed(engine)
    assert twice.parts[0].tables is part.tables
    same_as_afresh(twice)
    twice.save(tmp_path / "facts.bin", "db")
    same_as_afresh(FactParts.read(tmp_path / "facts.bin", "db"))

    monkeypatch.setattr(facts_module, "MERGE_SHARE", 0.0)  # any row read again: merged
    deliver([e for h in histories[190:] for e in h])
    merged = twice.refreshed(engine)
    assert merged.parts[0].tables is not part.tables and not merged.parts[0].recent
    same_as_afresh(merged)


@pytest.mark.parametrize("citizens", [RESAMPLED_UP_TO // 2, 5 * RESAMPLED_UP_TO])
@pytest.mark.parametrize("metric", ["conversations per day on benefit", "obligations on time"])
def test_the_bootstrap_interval_is_that_of_resampling_the_citizens_one_by_one(citizens, metric):
    """Small cells are resampled citizen by citizen; past RESAMPLED_UP_TO citizens the sums are
    drawn from their normal limit, and the interval still matches resampling."""
    rng = np.random.default_rng(1)
    if metric == "obligations on time":
        denominator = rng.integers(1, 12, citizens)
        numerator = rng.binomial(denominator, 0.7)
    else:  # skewed: a few citizens hold many conversations over long spells
        numerator, denominator = rng.poisson(rng.exponential(3, citizens)), rng.integers(30, 2000, citizens)
    contributions = np.column_stack((numerator, denominator)).astype(float)

    sums = resampled_sums(Spread.of(contributions), np.random.default_rng(2))
    one_by_one = np.concatenate([contributions[rng.integers(0, citizens, (100, citizens))].sum(axis=1)
                                 for _ in range(20)])

    low, high = np.percentile(sums[:, 0] / sums[:, 1], [2.5, 97.5])
    expected_low, expected_high = np.percentile(one_by_one[:, 0] / one_by_one[:, 1], [2.5, 97.5])
    width = expected_high - expected_low
    assert abs(low - expected_low) < 0.15 * width and abs(high - expected_high) < 0.15 * width


@pytest.mark.parametrize("citizens", [RESAMPLED_UP_TO, RESAMPLED_UP_TO + 1])
def test_citizens_up_to_resampled_up_to_are_resampled_one_by_one_past_it_the_normal_limit_of_all_of_them(citizens):
    """Issue 16, at the boundary: 2,000 citizens are still resampled one by one (each replicate
    sums whole numbers); from 2,001 the sums are drawn from their normal limit: n times the
    citizens' mean, n times their covariance as a population (each draw is one of all n
    citizens: divided by n, not n - 1), computed here by hand; the citizens in two parts of the
    facts, as a group total adds them up."""
    rng = np.random.default_rng(3)
    denominator = rng.integers(1, 12, citizens)
    contributions = np.column_stack((rng.binomial(denominator, 0.7), denominator)).astype(float)
    half = citizens // 2
    in_two_parts = Spread.total([Spread.of(contributions[:half]), Spread.of(contributions[half:])])
    for spread in (Spread.of(contributions), in_two_parts):
        assert (spread.pairs is not None) == (citizens <= RESAMPLED_UP_TO)  # kept only to be resampled
    sums = resampled_sums(in_two_parts, np.random.default_rng(4))
    assert sums.shape == (BOOTSTRAP_REPLICATES, 2)
    assert np.array_equal(sums, np.round(sums)) == (citizens <= RESAMPLED_UP_TO)
    if citizens > RESAMPLED_UP_TO:
        mean = citizens * contributions.mean(axis=0)
        centred = contributions - contributions.mean(axis=0)
        population = centred.T @ centred / citizens
        expected = np.random.default_rng(4).multivariate_normal(mean, citizens * population, size=BOOTSTRAP_REPLICATES)
        assert np.allclose(sums - mean, expected - mean, rtol=0, atol=1e-6)


def test_citizens_all_alike_past_resampled_up_to_give_their_sums_without_a_warning():
    """Alike citizens have no spread: every replicate is their sums, and the covariance that
    rounding leaves a hair below zero is no cause for numpy's warning (nor for an error)."""
    citizens = 3 * RESAMPLED_UP_TO + 7
    contributions = np.tile([3.3, 731.1], (citizens, 1))  # conversations, days on benefit
    spread = Spread.total([Spread.of(contributions[:1000]), Spread.of(contributions[1000:])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sums = resampled_sums(spread, np.random.default_rng(5))
    assert np.allclose(sums, [3.3 * citizens, 731.1 * citizens], rtol=1e-5, atol=0)


def test_requests_asking_the_same_at_once_share_one_computation():
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    store.store([Delivery(0, i, e) for i, e in enumerate(ly_citizen("c-1", "851", 1))])
    store.refresh()
    service = ReportingService(store, stream=None, authenticator=None, audit=None)
    computed, started = [], threading.Event()

    def slow(facts):
        computed.append(facts.tick)
        started.set()
        time.sleep(0.3)
        return len(facts.rows("ordinary")["due"])

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(service.cached, ("key",), slow)
        started.wait()
        answers = [pool.submit(service.cached, ("key",), slow) for _ in range(3)]
        assert {first.result(), *(a.result() for a in answers)} == {first.result()}
    assert len(computed) == 1
    store.store([Delivery(0, 10, e) for e in ly_citizen("c-2", "851", 2)])
    store.refresh()
    service.cached(("key",), slow)  # cases derived since: computed again
    assert len(computed) == 2


def test_each_reason_a_period_is_refused_is_said_in_full():
    # T11 runs 2018-07-01..2022-12-31: from the day before its start to the day after its end
    with pytest.raises(PeriodError) as refused:
        periods_for(T11, date(2018, 6, 30), date(2023, 1, 1), TODAY)
    assert str(refused.value) == (
        "from: before the trial starts on 2018-07-01: the baseline, just before the trial, would overlap the "
        "period evaluated; to: after 2022-12-31, the last day of the trial with data (its end, or today)")
    with pytest.raises(PeriodError) as refused:
        periods_for(T11, date(2019, 1, 2), date(2019, 1, 1), TODAY)
    assert refused.value.errors == [("to", "the period ends before it starts")]
    # a trial running until further notice has data up to today, not after
    open_ended = T11.model_copy(update={"period": T11.period.model_copy(update={"end": None})})
    assert periods_for(open_ended, None, None, TODAY)["trial"] == (date(2018, 7, 1), TODAY)
    with pytest.raises(PeriodError) as refused:
        periods_for(open_ended, None, TODAY + timedelta(days=1), TODAY)
    assert refused.value.errors == [("to", "after 2023-06-01, the last day of the trial with data (its end, or today)")]


def test_a_baseline_may_begin_on_the_earliest_date_but_not_before():
    # a trial from 1901-01-01: the baseline ends 1900-12-31, and may begin on 1900-01-01 (365 days)
    early = T11.model_copy(update={"period": T11.period.model_copy(update={"start": date(1901, 1, 1)})})
    assert periods_for(early, date(1901, 1, 1), date(1901, 12, 31), TODAY) == {
        "baseline": (date(1900, 1, 1), date(1900, 12, 31)), "trial": (date(1901, 1, 1), date(1901, 12, 31))}
    with pytest.raises(PeriodError) as refused:
        periods_for(early, date(1901, 1, 1), date(1902, 1, 1), TODAY)
    assert refused.value.errors == [("to", "the baseline, as long as the period and just before the trial, would "
                                           "begin before 1900-01-01: ask for a shorter period")]


def test_a_row_as_json_has_the_interval_and_what_it_compares_only_for_a_did_estimate():
    row = Row("obligations_waived", "trial", "baseline", "851", 3, 7, False, "LAS-74c", other_trials_active=("T2", "T9"))
    assert row.as_json() == {"metric": "obligations_waived", "group": "trial", "period": "baseline",
                             "municipality": "851", "value": 3, "n": 7, "suppressed": False, "rule": "LAS-74c",
                             "other_trials_active": ["T2", "T9"], "shared_with": {}}
    did = Row("did_estimate", "trial", "trial", None, -0.5, 12, False, of="ly_avg_spell_days", ci95=(-1.0, 0.25))
    assert did.as_json() == {"metric": "did_estimate", "group": "trial", "period": "trial", "municipality": None,
                             "value": -0.5, "n": 12, "suppressed": False, "rule": None, "of": "ly_avg_spell_days",
                             "ci95": (-1.0, 0.25), "other_trials_active": [], "shared_with": {}}


def ly_ending(case_id: str, municipality: str, serial: int, end: str, start: str = "2019-01-01") -> list[StreamEvent]:
    return stream_events([
        {"id": f"{case_id}-{i}", "source": "t", "type": f"dk.frisag.{name}", "subject": case_id, "time": None, "data": data}
        for i, (name, data) in enumerate([
            ("case.opened", {"cpr": f"010170-{serial:04d}", "municipality": municipality, "date": start}),
            ("benefit.started", {"benefit": "ledighedsydelse", "date": start}),
            ("benefit.ended", {"benefit": "ledighedsydelse", "date": end, "reason": "job"}),
        ])])


def other_trials_in(catalog: Catalog, municipalities: list[str], first: date, last: date) -> tuple[str, ...]:
    """Plain recomputation: the trials besides T11 in any of the municipalities, running at some time in [first, last]."""
    return tuple(t.id for t in sorted(catalog.trials.values(), key=lambda t: int(t.id[1:]))
                 if t.id != "T11" and set(t.municipalities) & set(municipalities)
                 and t.period.start <= last and (t.period.end is None or t.period.end >= first))


def test_a_series_counts_each_month_within_the_period_asked_and_names_the_trials_active_then():
    # the period 15 May - 1 July 2019; in Aalborg (T11) spells ending: 5 on 20 May, 6 on 30 June, 5 on
    # 1 July; one on 10 May (before the period) and one on 2 July (after it) are not counted; in
    # Aarhus 2, 6 and 5
    ends = ["2019-05-10", *["2019-05-20"] * 5, *["2019-06-30"] * 6, *["2019-07-01"] * 5, "2019-07-02"]
    aarhus = [*["2019-05-20"] * 2, *["2019-06-30"] * 6, *["2019-07-01"] * 5]
    facts = stored([ly_ending(f"aalborg-{i}", "851", i, end) for i, end in enumerate(ends)]
                   + [ly_ending(f"aarhus-{i}", "751", 100 + i, end) for i, end in enumerate(aarhus)])
    # more trials in T11's municipalities: one ends the day before the period, one starts the day
    # after it, one on the first day of June, one on the last day of June
    def trial(name: str, start: date, end: date | None):
        return T11.model_copy(update={"id": name, "period": T11.period.model_copy(update={"start": start, "end": end})})
    added = {"T90": trial("T90", date(2019, 1, 1), date(2019, 5, 14)), "T91": trial("T91", date(2019, 7, 2), None),
             "T92": trial("T92", date(2019, 6, 1), None), "T93": trial("T93", date(2019, 6, 30), None)}
    catalog = Catalog(CATALOG.rules, {**CATALOG.trials, **added})
    first, last = date(2019, 5, 15), date(2019, 7, 1)
    rows = series(facts, catalog, T11, "ly_spells_ended", first, last, ["751"])
    months = {"2019-05": (first, date(2019, 5, 31)), "2019-06": (date(2019, 6, 1), date(2019, 6, 30)),
              "2019-07": (date(2019, 7, 1), last)}
    trial_group, aarhus_group = list(T11.municipalities), ["751"]
    assert other_trials_in(catalog, trial_group, *months["2019-06"])[-2:] == ("T92", "T93")
    assert "T92" not in other_trials_in(catalog, trial_group, *months["2019-05"])
    # Aarhus's 2 in May are hidden, and with them the smaller of the other months (July's 5)
    assert [(r.group, r.period, r.value, r.n, r.suppressed, r.other_trials_active) for r in rows] == [
        ("trial", "2019-05", 5, 5, False, other_trials_in(catalog, trial_group, *months["2019-05"])),
        ("comparison", "2019-05", None, None, True, other_trials_in(catalog, aarhus_group, *months["2019-05"])),
        ("trial", "2019-06", 6, 6, False, other_trials_in(catalog, trial_group, *months["2019-06"])),
        ("comparison", "2019-06", 6, 6, False, other_trials_in(catalog, aarhus_group, *months["2019-06"])),
        ("trial", "2019-07", 5, 5, False, other_trials_in(catalog, trial_group, *months["2019-07"])),
        ("comparison", "2019-07", None, None, True, other_trials_in(catalog, aarhus_group, *months["2019-07"])),
    ]
    assert {(r.metric, r.municipality, r.rule) for r in rows} == {("ly_spells_ended", None, None)}
    # a group with no one: a count of 0, a mean of no one no value (spells of 140, 181 and 182 days)
    nobody = series(facts, catalog, T11, "ly_spells_ended", first, last, ["561"])
    assert [(r.value, r.n, r.suppressed) for r in nobody if r.group == "comparison"] == [(0, 0, False)] * 3
    means = series(facts, catalog, T11, "ly_avg_spell_days", first, last, ["561"])
    assert [(r.group, r.value, r.n) for r in means] == [
        ("trial", 140, 5), ("comparison", None, 0), ("trial", 181, 6), ("comparison", None, 0),
        ("trial", 182, 5), ("comparison", None, 0)]


def test_without_citizens_in_the_trials_municipalities_every_clean_one_is_compared():
    # T11's municipalities have no one; 461 two citizens, 561 one whose spell lies outside the periods
    facts = stored([ly_ending("odense-0", "461", 1, "2019-06-30"), ly_ending("odense-1", "461", 2, "2019-06-30"),
                    ly_ending("aabenraa-0", "561", 3, "2021-06-30", start="2021-01-01")])
    periods = periods_for(T11, date(2019, 1, 1), date(2019, 12, 31), TODAY)
    assert comparison_default(facts, CATALOG, T11, periods) == (
        ["461", "561"], {}, {"citizens": {"461": None}, "range": None, "left_out": []})  # 2: under 5, not shown


def test_citizens_over_18_months_are_counted_once_however_many_cases_they_have():
    """6 citizens in Aalborg on ledighedsydelse since 2017-01-01 (over 18 months at both ends of
    2019); two of them have a second case, open as long: 6 citizens, not 8 cases."""
    def long_ly(case_id: str, serial: int) -> list[StreamEvent]:
        return stream_events([
            {"id": f"{case_id}-{i}", "source": "t", "type": f"dk.frisag.{name}", "subject": case_id, "time": None,
             "data": data} for i, (name, data) in enumerate([
                ("case.opened", {"cpr": f"010170-{serial:04d}", "municipality": "851", "date": "2017-01-01"}),
                ("benefit.started", {"benefit": "ledighedsydelse", "date": "2017-01-01"})])])
    histories = [long_ly(f"aalborg-{i}", i) for i in range(6)] + [long_ly(f"aalborg-again-{i}", i) for i in range(2)]
    rows = evaluated(histories)
    for metric in ("ly_over_18m_at_start", "ly_over_18m_at_end"):
        cell = rows[(metric, "trial", "trial", "851")]
        assert (cell.value, cell.n, cell.suppressed) == (6, 6, False), metric


def test_a_period_of_one_day_has_a_baseline_of_the_day_before_the_trial():
    # T11 runs 2018-07-01..2022-12-31: its first day alone, or its last, against 2018-06-30
    for day in (date(2018, 7, 1), date(2022, 12, 31)):
        assert periods_for(T11, day, day, TODAY) == {"baseline": (date(2018, 6, 30), date(2018, 6, 30)),
                                                     "trial": (day, day)}


def test_facts_in_parts_give_the_numbers_of_one_part_and_a_change_tallies_only_its_parts_again(monkeypatch, tmp_path):
    """Facts kept in parts by citizen (a million cases' would be tallied whole for each change)
    give the numbers, comparison group, series and municipalities of facts in one part; after a
    change only the parts of the changed cases' citizens are new objects, and their answers are
    updated by the changed citizens' rows alone, change after change; a snapshot of them reads as they were; grown past twice its citizens per part, the facts are
    split again. The oracle: one part, read afresh."""
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    histories = [stream_events(docs) for docs in Population(seed=11, start=date(2016, 1, 1)).cases(240)]
    offsets = iter(range(10**6))

    def deliver(events):
        store.store([Delivery(0, next(offsets), e) for e in events])
        store.refresh()

    def same_as_one_part(facts: FactParts) -> None:
        one = FactParts.load(engine, parts=1)
        same_facts(facts, one)
        assert facts.municipalities() == one.municipalities()
        for trial in (T11, CATALOG.trials["T2"]):
            periods = periods_for(trial, None, None, TODAY)
            default = comparison_default(one, CATALOG, trial, periods)
            assert comparison_default(facts, CATALOG, trial, periods) == default
            assert evaluate(facts, CATALOG, trial, periods, default[0]) == evaluate(one, CATALOG, trial, periods,
                                                                                   default[0])
            for metric in ("obligations_waived", "exits_to_job_share", "ly_avg_spell_days"):
                assert series(facts, CATALOG, trial, metric, *periods["trial"], default[0]) == series(
                    one, CATALOG, trial, metric, *periods["trial"], default[0])

    halves = [(h[:len(h) // 2], h[len(h) // 2:]) for h in histories[:10]]
    deliver([e for first, _ in halves for e in first] + [e for h in histories[10:200] for e in h])
    five = FactParts.load(engine, parts=5)
    assert len(five.parts) == 5 and all(len(part.rows("ordinary")["case"]) for part in five.parts)
    same_as_one_part(five)
    first_half = periods_for(T11, date(2019, 1, 1), date(2019, 6, 30), TODAY)  # asked of the same facts again
    assert comparison_default(five, CATALOG, T11, first_half) == comparison_default(
        FactParts.load(engine, parts=1), CATALOG, T11, first_half)

    tallied = []
    original = evaluation_module._tallied
    monkeypatch.setattr(evaluation_module, "_tallied", lambda facts, *rest: tallied.append(facts) or original(facts, *rest))
    periods = periods_for(T11, None, None, TODAY)
    evaluate(five, CATALOG, T11, periods, ["751"])
    assert len(tallied) == 5
    evaluate(five, CATALOG, T11, periods, ["751"])
    assert len(tallied) == 5  # each part remembers its tallies

    deliver([e for _, second in halves[:2] for e in second])  # two cases changed
    changed = five.refreshed(engine)
    new = [k for k, part in enumerate(changed.parts) if part is not five.parts[k]]
    assert 1 <= len(new) <= 2
    tallied.clear()
    evaluate(changed, CATALOG, T11, periods, ["751"])
    # a changed part's tallies updated by its changed citizens' rows, then and now: not tallied whole
    assert len(tallied) == 2 * len(new)
    assert all(0 < len(np.unique(facts.rows("responsible")["citizen"])) <= 2 for facts in tallied)
    same_as_one_part(changed)
    for first, second in halves[2:6]:  # one case changed at a time, every answer updated again
        deliver(second)
        changed = changed.refreshed(engine)
        same_as_one_part(changed)
    changed.save(tmp_path / "facts.bin", "db")  # a snapshot of facts in parts, some rows read again
    read = FactParts.read(tmp_path / "facts.bin", "db")
    assert len(read.parts) == 5
    same_as_one_part(read)

    monkeypatch.setattr(facts_module, "PART_CITIZENS", 10)  # 5 parts: split again past 100 citizens
    deliver([e for _, second in halves[6:] for e in second] + [e for h in histories[200:] for e in h])
    grown = changed.refreshed(engine)
    assert len(grown.parts) == round(len(grown.codes["citizen"]) / 10)
    same_as_one_part(grown)


def test_a_citizens_conversations_and_exits_count_by_what_the_citizen_did_whoever_shares_their_part():
    """Every number is a sum over citizens, so that facts in parts give those of one part: a
    conversation counts where its citizen was on a benefit in the period (the months it is
    counted against), an exit to a job where the group's citizen was responsible for on the day,
    whoever else is on a benefit there. Rebild (840): one citizen on a benefit all year (D), one
    with a conversation and no benefit (B), one who came from Aalborg (851) after their benefit
    ended there and left for a job (C); Aalborg: 6 on a benefit all year, none exits. In one part
    or three (D in another than B's and C's), B's conversation never counts and C's exit does (hand-computed: 1 of 8 on a benefit)."""
    def case(case_id, serial, municipality, *later):
        return stream_events([
            {"id": f"{case_id}-{i}", "source": "t", "type": f"dk.frisag.{name}", "subject": case_id, "time": None,
             "data": data}
            for i, (name, data) in enumerate([
                ("case.opened", {"cpr": f"010170-{serial:04d}", "municipality": municipality, "date": "2019-01-01"}),
                *later])])

    on_benefit = ("benefit.started", {"benefit": "ledighedsydelse", "date": "2019-01-01"})
    histories = [case("d", 1, "840", on_benefit),
                 case("b", 2, "840", ("conversation.held", {"date": "2019-06-03", "kind": "jobsamtale"})),
                 case("c", 3, "851", on_benefit,
                      ("benefit.ended", {"benefit": "ledighedsydelse", "date": "2019-03-31", "reason": "other"}),
                      ("case.moved", {"municipality": "840", "date": "2019-04-01"}),
                      ("case.closed", {"date": "2019-05-01", "reason": "job"}))]
    histories += [case(f"a{i}", 10 + i, "851", on_benefit) for i in range(6)]
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    store.store([Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)])
    store.refresh()
    periods = periods_for(T11, date(2019, 1, 1), date(2019, 12, 31), TODAY)
    for parts in (1, 3):
        facts = FactParts.load(engine, parts)
        citizen = {h[0].subject: h[0].data["citizen"] for h in histories}
        part = {c: facts.codes["citizen"].index[citizen[c]] % parts for c in "dbc"}
        assert parts == 1 or part["d"] not in (part["b"], part["c"])  # D alone in Rebild in its part
        rows = {(r.metric, r.group, r.period, r.municipality): r
                for r in evaluate(facts, CATALOG, T11, periods, ["751"])}
        exits = rows[("exits_to_job_share", "trial", "trial", None)]
        assert (exits.value, exits.n) == (0.125, 8), parts
        talks = rows[("conversations_held_per_100_months", "trial", "trial", None)]
        assert (talks.value, talks.n) == (0, 8), parts


def test_answers_updated_by_changed_citizens_are_those_of_the_facts_read_afresh(monkeypatch):
    """Cases moved into and out of municipalities where trials share obligations, and closed for
    a job: every answer of the changed parts, updated by their changed citizens' rows then and
    now, is the answer of the same facts read afresh and tallied whole (as published, in JSON)."""
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    histories = [stream_events(docs) for docs in Population(seed=17, start=date(2016, 1, 1)).cases(400)]
    store.store([Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)])
    store.refresh()
    trials = [CATALOG.trials[t] for t in ("T2", "T9", "T23")]  # 15 answers: a part remembers 16

    def answers(facts: FactParts) -> list:
        found = []
        for trial in trials:
            periods = periods_for(trial, None, None, TODAY)
            default = comparison_default(facts, CATALOG, trial, periods)
            found.append(default)
            found += [r.as_json() for r in evaluate(facts, CATALOG, trial, periods, default[0])]
            for metric in ("obligations_waived", "caseworker_hours_freed", "exits_to_job_share"):
                found += [r.as_json() for r in series(facts, CATALOG, trial, metric, *periods["trial"], default[0])]
        return found

    kept = FactParts.load(engine, parts=2)
    answers(kept)
    open_cases = [h for h in histories if not any(e.name == "case.closed" for e in h)]
    changes = []
    for i, h in enumerate(open_cases[:16]):
        name, data = (("case.moved", {"municipality": ("813", "849", "820", "851")[i % 4], "date": "2018-09-01"})
                      if i % 2 else ("case.closed", {"reason": "job", "date": "2019-03-01"}))
        changes.append(h[-1]._replace(id=f"{h[-1].id}-changed", type=f"dk.frisag.{name}", data=data,
                                      sequence=h[-1].sequence + 1))
    store.store([Delivery(0, len(histories) * 100 + i, e) for i, e in enumerate(changes)])
    store.refresh()
    changed = kept.refreshed(engine)
    assert all(part.earlier for part in changed.parts)  # both changed, updatable
    tallied = []
    for name in ("_tallied", "_monthly", "_citizens_on_benefit"):
        monkeypatch.setattr(evaluation_module, name, lambda facts, *rest, original=getattr(evaluation_module, name):
                            tallied.append(facts) or original(facts, *rest))
    updated, updated_from = answers(changed), list(tallied)
    assert updated == answers(FactParts.load(engine, parts=2))
    # of the changed citizens' rows alone (then and now), every answer: none tallied whole
    assert updated_from and all(len(np.unique(f.rows("responsible")["citizen"])) <= 16 for f in updated_from)


def test_a_question_first_asked_after_a_change_is_updated_at_the_next_one(monkeypatch):
    """T11 asked, a change, T2 asked for the first time (tallied whole), another change: both are
    updated by the changed citizens' rows, T11 from the facts before the first change and T2
    from those before the second, and both are the numbers of the facts read afresh."""
    monkeypatch.setattr(facts_module, "CHANGED_SHARE", 1.0)  # parts of a few dozen citizens
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    histories = [stream_events(docs) for docs in Population(seed=19, start=date(2016, 1, 1)).cases(120)]
    store.store([Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)])
    store.refresh()
    open_cases = iter(h for h in histories if not any(e.name == "case.closed" for e in h))
    questions = {t: (CATALOG.trials[t], periods_for(CATALOG.trials[t], None, None, TODAY)) for t in ("T11", "T2")}

    def ask(facts: FactParts, trial: str) -> list[Row]:
        return evaluate(facts, CATALOG, questions[trial][0], questions[trial][1], ["751"])

    offsets = iter(range(10**6, 10**7))

    def change(facts: FactParts) -> FactParts:
        h = next(open_cases)
        store.store([Delivery(0, next(offsets), h[-1]._replace(
            id=f"{h[-1].id}-closed", type="dk.frisag.case.closed", data={"reason": "job", "date": "2019-03-01"},
            sequence=h[-1].sequence + 1))])
        store.refresh()
        return facts.refreshed(engine)

    facts = FactParts.load(engine, parts=1)  # every change in the one part
    ask(facts, "T11")
    facts = change(facts)
    ask(facts, "T11"), ask(facts, "T2")
    facts = change(facts)
    tallied = []
    original = evaluation_module._tallied
    monkeypatch.setattr(evaluation_module, "_tallied", lambda f, *rest: tallied.append(f) or original(f, *rest))
    answers = {trial: ask(facts, trial) for trial in questions}
    assert tallied and all(len(np.unique(f.rows("responsible")["citizen"])) <= 2 for f in tallied)
    afresh = FactParts.load(engine, parts=1)
    assert answers == {trial: ask(afresh, trial) for trial in questions}


@pytest.mark.parametrize("numerator", [3, 1.5])
def test_a_cell_left_with_no_one_is_one_of_nothing_as_a_tally_gives_it(numerator):
    """Hours freed (a sum of fractions) or obligations (a whole number): with its citizens gone,
    0 as a whole number, as a month with nothing to count is published, not 0.0."""
    cell = Cell("count", numerator, 0.0, 2)
    left = cell.less(Cell("count", numerator, 0.0, 2))
    assert left == Cell("count", 0, 0, 0) and type(left.value()) is int and type(left.numerator) is int
    assert cell.less(Cell("count", 1, 0.0, 1)) == Cell("count", numerator - 1, 0.0, 1)


def test_a_groups_tallies_of_parts_added_up_are_those_of_the_facts_in_one_part():
    """Each cell, group total and overall total (sums, distinct citizens, hits, each citizen's
    contribution): of the facts in 4 parts added up, as of the same facts in one."""
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    events = [e for docs in Population(seed=13, start=date(2016, 1, 1)).cases(150) for e in stream_events(docs)]
    store.store([Delivery(0, i, e) for i, e in enumerate(events)])
    store.refresh()
    (one,), four = FactParts.load(engine, parts=1).parts, FactParts.load(engine, parts=4).parts
    periods = periods_for(T11, None, None, TODAY)

    def same(a, b) -> None:
        assert (a.kind, a.n, a.hits) == (b.kind, b.n, b.hits)
        assert (a.numerator, a.denominator) == pytest.approx((b.numerator, b.denominator))
        if b.spread is None:
            assert a.spread is None
        else:
            assert sorted(map(tuple, a.spread.pairs)) == pytest.approx(sorted(map(tuple, b.spread.pairs)))
            assert (a.spread.n, *a.spread.sums, *a.spread.products.flat) == pytest.approx(
                (b.spread.n, *b.spread.sums, *b.spread.products.flat))

    whole = evaluation_module._tallied(one, CATALOG, T11, periods, ["751"])[0]
    parts = [evaluation_module._tallied(part, CATALOG, T11, periods, ["751"])[0] for part in four]
    for key, tallies in whole.items():
        added = evaluation_module._combined([part[key] for part in parts])
        assert set(added) == set(tallies) and tallies, key
        for metric, tally in tallies.items():
            same(added[metric].overall, tally.overall)
            assert set(added[metric].totals) == set(tally.totals), (key, metric)
            for rule, expected in tally.totals.items():
                same(added[metric].totals[rule], expected)
            cells, expected = added[metric].cells, tally.cells
            assert (cells.rule.tolist(), cells.place.tolist()) == (expected.rule.tolist(), expected.place.tolist())
            for i in range(len(expected)):
                same(cells.cell(i), expected.cell(i))


def test_a_forked_child_tallies_the_parts_with_threads_of_its_own(tmp_path):
    """The parts are tallied side by side in a pool of threads; a process forked after the pool's
    threads started (mutmut forks one per mutant) has none of them, and must not wait for ever
    on work no thread takes: it answers as its parent does."""
    engine = create_engine(f"sqlite:///{tmp_path / 'reporting.sqlite'}")
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    events = [e for docs in Population(seed=13, start=date(2016, 1, 1)).cases(60) for e in stream_events(docs)]
    store.store([Delivery(0, i, e) for i, e in enumerate(events)])
    store.refresh()
    periods = periods_for(T11, None, None, TODAY)
    expected = evaluate(FactParts.load(engine, parts=3), CATALOG, T11, periods, ["751"])  # the pool's threads started
    fork = multiprocessing.get_context("fork")
    with fork.Pool(1) as child:
        answer = child.apply_async(_evaluated_in_parts, (engine.url.render_as_string(), 3))
        assert answer.get(timeout=30) == expected


def test_the_parts_that_must_be_tallied_are_tallied_side_by_side_one_alone_by_the_asker(tmp_path):
    """Several parts that do not know an answer compute it in the tally threads at once; a part
    that knows it is not asked again; one part alone computes it in the asking thread (threads
    taking turns would cost it more than they save). Each part's answer, in the parts' order."""
    engine = create_engine(f"sqlite:///{tmp_path / 'reporting.sqlite'}")
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    events = [e for docs in Population(seed=13, start=date(2016, 1, 1)).cases(30) for e in stream_events(docs)]
    store.store([Delivery(0, i, e) for i, e in enumerate(events)])
    store.refresh()
    facts = FactParts.load(engine, parts=3)
    computed: dict[int, str] = {}  # part -> the thread that computed its answer

    def compute(part) -> int:
        computed[facts.parts.index(part)] = threading.current_thread().name
        return facts.parts.index(part)

    def asked(key: tuple, known: list[int]) -> dict[int, str]:
        for k in known:
            facts.parts[k].answer(key, CATALOG, lambda part: facts.parts.index(part))
        computed.clear()
        assert evaluation_module._each_part(facts, key, CATALOG, compute) == [0, 1, 2]
        return dict(computed)

    here = threading.current_thread().name
    for known in ([], [0]):  # three, then two, that do not know it
        by = asked(("tallied", len(known)), known)
        assert sorted(by) == sorted({0, 1, 2} - set(known))
        assert here not in by.values(), by
    assert asked(("tallied", 2), [0, 2]) == {1: here}  # one alone
    assert asked(("tallied", 2), []) == {}  # every part knows it now


def _evaluated_in_parts(url: str, parts: int) -> list:
    engine = create_engine(url)
    return evaluate(FactParts.load(engine, parts=parts), CATALOG, T11, periods_for(T11, None, None, TODAY), ["751"])
