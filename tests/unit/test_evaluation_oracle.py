"""The evaluation's obligation numbers against the independent reference (tests/reference.py),
not against the fold (issue 16): on a generated population, for T11 (LAS-74c) and for T2
(LAB-jobsamtale, on the population's dagpenge cases before 2020), the obligations the ordinary
rules required, those required with the trials, those the trial waived, the caseworker hours
freed and the share on time, per group, period and municipality."""

from collections import defaultdict
from datetime import date, timedelta

import pytest

from services.reporting.evaluation import evaluate, periods_for
from shared.catalog import Catalog
from shared.population import Population
from tests.built import built
from tests.reference import MINUTES, certificate, jobsamtale_dagpenge, las_74c
from tests.unit.test_evaluation import TODAY, stored, stream_events

CATALOG = Catalog.load()
HORIZON = timedelta(days=400)  # the reporting store folds this far past a case's last date or today
METRICS = ("obligations_required_ordinary", "obligations_required", "obligations_waived", "caseworker_hours_freed",
           "obligations_on_time_share")
COMPARISON = ["751", "461", "561", "730", "791", "615"]  # the population's municipalities without trials


def horizon(history) -> date:
    return max(max(date.fromisoformat(e.data["date"]) for e in history), TODAY) + HORIZON


def dagpenge_before_2020(history) -> bool:
    """A case of the dagpenge trajectory whose spell has ended before 2020 (the reference
    models the 2015 parameters only)."""
    started = [e for e in history if e.name == "benefit.started"]
    ended = [e for e in history if e.name in ("benefit.ended", "case.closed")]
    return ([e.data["benefit"] for e in started] == ["dagpenge"] and bool(ended)
            and min(e.data["date"] for e in ended) < "2019-12-01")


def reference_rows(histories, occurrences, rule: str, trial: str, groups, periods) -> dict:
    """{(metric, group, period, municipality or None): (value, n)} from the reference alone."""
    out = {}
    for group, members in groups.items():
        for period, (lo, hi) in periods.items():
            counts = defaultdict(lambda: defaultdict(int))  # metric -> place -> count
            who = defaultdict(lambda: defaultdict(set))
            on_time = defaultdict(int)
            for h, (ordinary, with_trials) in zip(histories, occurrences):
                citizen = h[0].data["citizen"]
                for regime, found in (("ordinary", ordinary), ("trials", with_trials)):
                    for o in found:
                        if not (lo <= o.due <= hi and o.municipality in members):
                            continue
                        if regime == "ordinary":
                            metric = "obligations_required_ordinary"
                        elif o.waived_by is None:
                            metric = "obligations_required"
                            for place in (o.municipality, None):
                                on_time[place] += o.done_on is not None and o.done_on <= o.deadline
                        elif o.waived_by == trial:
                            metric = "obligations_waived"
                        else:
                            continue
                        for place in (o.municipality, None):
                            counts[metric][place] += 1
                            who[metric][place].add(citizen)
            for metric, places in counts.items():
                for place, count in places.items():
                    out[(metric, group, period, place)] = (count, len(who[metric][place]))
            for place, count in counts["obligations_required"].items():
                out[("obligations_on_time_share", group, period, place)] = (
                    round(on_time[place] / count, 4), len(who["obligations_required"][place]))
            for place, count in counts["obligations_waived"].items():
                out[("caseworker_hours_freed", group, period, place)] = (
                    round(count * MINUTES[rule] / 60, 2), len(who["obligations_waived"][place]))
    return out


def compare(rows, expected, rule: str) -> int:
    """Every row of the metrics covered agrees with the reference; a suppressed row must be of
    1-4 citizens or hidden to protect one (then it is not compared). How many were compared."""
    compared = 0
    for key, row in rows.items():
        metric, row_rule, group, period, place = key
        if metric not in METRICS or row_rule not in (rule, None):
            continue
        value, n = expected.get((metric, group, period, place), (0, 0))
        if row.suppressed:
            assert row.value is None and row.n is None, key
            continue
        assert (row.value, row.n) == (pytest.approx(value, abs=0.005), n), key
        compared += 1
    for (metric, group, period, place), (value, n) in expected.items():  # nothing the evaluation left out
        rule_key = None if metric in ("caseworker_hours_freed", "obligations_on_time_share") else rule
        assert (metric, rule_key, group, period, place) in rows, (metric, group, period, place)
    return compared


def evaluated(histories, trial, lo, hi):
    periods = periods_for(trial, lo, hi, TODAY)
    rows = {(r.metric, r.rule, r.group, r.period, r.municipality): r
            for r in evaluate(stored(histories), CATALOG, trial, periods, COMPARISON)}
    return periods, rows


def test_t11_reassessments_as_the_reference_counts_them():
    histories = [stream_events(docs) for docs in Population(seed=16, start=date(2016, 1, 1)).cases(800)]
    trial = CATALOG.trials["T11"]
    periods, rows = evaluated(histories, trial, date(2018, 7, 1), date(2021, 6, 30))
    occurrences = [(las_74c(h, horizon(h), trials=False, every=True), las_74c(h, horizon(h), every=True))
                   for h in histories]
    groups = {"trial": set(trial.municipalities), "comparison": set(COMPARISON)}
    expected = reference_rows(histories, occurrences, "LAS-74c", "T11", groups, periods)

    assert compare(rows, expected, "LAS-74c") > 20
    for metric in ("obligations_required_ordinary", "obligations_waived", "caseworker_hours_freed"):
        total = rows[(metric, "LAS-74c" if metric != "caseworker_hours_freed" else None, "trial", "trial", None)]
        assert not total.suppressed and total.value > 0, metric  # the comparison was not vacuous
    assert rows[("obligations_on_time_share", None, "comparison", "trial", None)].value is not None


def test_t2_job_talks_on_dagpenge_as_the_reference_counts_them():
    population = Population(seed=16, start=date(2016, 1, 1), end=date(2019, 6, 30))
    histories = [h for h in (stream_events(docs) for docs in population.cases(600)) if dagpenge_before_2020(h)]
    trial = CATALOG.trials["T2"]
    periods, rows = evaluated(histories, trial, date(2017, 7, 1), date(2019, 6, 30))
    occurrences = [(talks := jobsamtale_dagpenge(h, horizon(h), complete=True), talks) for h in histories]
    groups = {"trial": set(trial.municipalities), "comparison": set(COMPARISON)}
    expected = reference_rows(histories, occurrences, "LAB-jobsamtale", "T2", groups, periods)

    assert compare(rows, expected, "LAB-jobsamtale") > 20
    for metric in ("obligations_required_ordinary", "obligations_required"):
        total = rows[(metric, "LAB-jobsamtale", "trial", "trial", None)]
        assert not total.suppressed and total.value > 100, metric
    assert rows[("obligations_on_time_share", None, "trial", "trial", None)].value is not None


OVERLAPPING = ("T6", "T10", "T11")  # Jammerbugt (849) runs all three; 820, 851, 787 and 840 two of them
OWN_RULE = {"T6": "SDP-LAE285", "T10": "REV-LAE265", "T11": "LAS-74c"}


@pytest.fixture(scope="module")
def overlapping():
    def build():
        histories = [stream_events(docs) for docs in Population(seed=615, start=date(2016, 1, 1)).cases(6000)]
        return histories, stored(histories)
    return built("overlapping", (615, 6000), build)


def own_occurrences(history, trial: str):
    """(ordinary, with the trial) occurrences of the one rule the trial waives, from the reference."""
    if trial == "T11":
        return las_74c(history, horizon(history), trials=False, every=True), las_74c(history, horizon(history), every=True)
    rule = OWN_RULE[trial]
    return certificate(history, rule, trials=False), certificate(history, rule)


@pytest.mark.slow
@pytest.mark.xdist_group("overlapping")  # one worker builds the 6,000 cases once (Makefile)
@pytest.mark.parametrize("trial", OVERLAPPING)
def test_overlapping_trials_are_each_credited_with_their_own_effects_as_the_reference_counts(overlapping, trial):
    """Issue 15, the attribution test: T6 (LÆ285), T10 (LÆ265) and T11 (LAS-74c) run at once in
    Jammerbugt and pairwise in four more municipalities. Each trial's obligations required
    under the ordinary rules and with the trial, waived, hours freed and share on time, per
    group, period and municipality, are those of the independent reference (tests/reference.py)
    for its own rule and its own waivers alone."""
    histories, facts = overlapping
    t = CATALOG.trials[trial]
    periods = periods_for(t, date(2018, 7, 1), date(2019, 12, 31), TODAY)
    rows = {(r.metric, r.rule, r.group, r.period, r.municipality): r for r in evaluate(facts, CATALOG, t, periods, COMPARISON)}
    groups = {"trial": set(t.municipalities), "comparison": set(COMPARISON)}
    expected = reference_rows(histories, [own_occurrences(h, trial) for h in histories], OWN_RULE[trial], trial,
                              groups, periods)

    assert compare(rows, expected, OWN_RULE[trial]) > 20
    assert {key[1] for key in rows if key[0].startswith("obligations_") and key[1]} == {OWN_RULE[trial]}
    waived_in_849 = rows[("obligations_waived", OWN_RULE[trial], "trial", "trial", "849")]
    assert not waived_in_849.suppressed and waived_in_849.value > 0  # the overlap is exercised
    assert expected[("caseworker_hours_freed", "trial", "trial", None)][0] > 0


@pytest.mark.slow
@pytest.mark.xdist_group("overlapping")
def test_a_trial_with_no_obligation_effects_frees_nothing(overlapping):
    """T1 (micro-loans in Aalborg, where T10 and T11 waive obligations at the same time) only
    permits: it frees exactly 0 hours, waives nothing, and counts no obligations."""
    _, facts = overlapping
    t = CATALOG.trials["T1"]
    periods = periods_for(t, date(2018, 7, 1), date(2019, 12, 31), TODAY)
    rows = evaluate(facts, CATALOG, t, periods, COMPARISON)
    hours = [r for r in rows if r.metric == "caseworker_hours_freed"]
    assert len(hours) == 4 and all((r.value, r.n, r.suppressed) == (0.0, 0, False) for r in hours)
    assert not [r for r in rows if r.metric.startswith("obligations_")]
