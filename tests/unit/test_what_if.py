"""What-if scenarios folded over a generated population in the reporting store (SQLite in
memory), against independent oracles: the evaluation's numbers for "T11 never existed", the
plain-Python LAS-74c reference (tests/reference.py) for T11 extended, the sum of one-municipality
rollouts for a national one, and hand-made cells for discretion."""

from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.reporting.evaluation import evaluate, periods_for
from services.reporting.facts import FactParts
from services.reporting.store import ReportingStore
from services.reporting.whatif import (
    REQUIRED_SCENARIO,
    REQUIRED_TODAY,
    WAIVED_SCENARIO,
    WAIVED_TODAY,
    Run,
    Scenario,
    ScenarioError,
    answer,
    counted,
    protected,
    rules_changed,
    simulate,
    touched_cases,
)
from shared.catalog import Catalog, Trial
from shared.municipalities import municipalities
from shared.population import MUNICIPALITIES, Population
from shared.stream import Delivery
from tests.reference import MINUTES, las_74c
from tests.unit.test_evaluation import stream_events

CATALOG = Catalog.load()
T11 = CATALOG.trials["T11"]
AS_OF = date(2025, 6, 1)
HORIZON = timedelta(days=400)  # the reporting store folds this far past a case's last date or today


def stored(seed: int, cases: int) -> tuple[list, ReportingStore]:
    """`cases` cases from 2016 to 2024, stored as the reporting service stores them (SQLite in memory)."""
    histories = [stream_events(d) for d in Population(seed=seed, start=date(2016, 1, 1), end=date(2024, 12, 31)).cases(cases)]
    store = ReportingStore(create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool),
                           CATALOG, today=lambda: AS_OF)
    deliveries = [Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)]
    for start in range(0, len(deliveries), 5000):
        store.store(deliveries[start:start + 5000])
    store.refresh()
    return histories, store


@pytest.fixture(scope="module")
def population():
    histories, store = stored(21, 1500)
    return histories, store.engine


def trial(**changes) -> Trial:
    return Trial.model_validate({**T11.model_dump(), **changes})


def simulated(engine, scenario: Scenario):
    changed = scenario.applied_to(CATALOG)
    first, last = counted(*scenario.months(CATALOG, AS_OF + HORIZON), AS_OF + HORIZON)
    run = Run(CATALOG, changed, first, last, AS_OF, rules_changed(CATALOG, changed) or None)
    places = scenario.municipalities(CATALOG)
    return simulate(engine, run, touched_cases(engine, places), None, lambda share: None), run, places


@pytest.mark.parametrize("scenario", [Scenario(title="Intet ændret"), Scenario(title="T11 som i dag", trials=[T11])])
def test_a_scenario_that_changes_nothing_differs_in_nothing(population, scenario):
    histories, engine = population
    cells, run, places = simulated(engine, scenario)
    if not scenario.trials:
        assert cells.cases == len(histories)  # compared everywhere
    # there was something to compare: every rule's obligations, or those of the rule T11 changes in its time
    assert sum(n[REQUIRED_TODAY] + n[WAIVED_TODAY] for n in cells.numbers.values()) > (500 if places is None else 30)
    assert all(n[REQUIRED_TODAY] == n[REQUIRED_SCENARIO] and n[WAIVED_TODAY] == n[WAIVED_SCENARIO]
               for n in cells.numbers.values())
    result = answer(cells, run, scenario, places)
    published = [c for m in result["municipalities"] for c in [m, *m["months"], *m["rules"]] if not c["suppressed"]]
    assert published and all((c["obligations_freed"], c["hours_freed"], c["citizens_affected"]) == (0, 0, 0)
                             for c in published)


def test_t11_never_existing_gives_back_what_the_evaluation_says_t11_waived(population):
    _, engine = population
    scenario = Scenario(title="Uden T11", without_trials=["T11"])
    cells, run, places = simulated(engine, scenario)
    assert (run.first, run.last) == (date(2018, 1, 1), T11.period.end)  # whole years: T11 began 2018-07-01
    periods = periods_for(T11, T11.period.start, T11.period.end, AS_OF)
    rows = evaluate(FactParts.load(engine), CATALOG, T11, periods, ["751"])
    evaluated = {(r.metric, r.rule, r.municipality): r for r in rows if (r.group, r.period) == ("trial", "trial")}
    back = defaultdict(int)  # per municipality: required without T11 that were waived with it
    for (place, _, rule), numbers in cells.numbers.items():
        assert rule == "LAS-74c"  # T11 changes only LAS-74c: the other rules are not counted
        if rule == "LAS-74c":
            back[place] += numbers[REQUIRED_SCENARIO] - numbers[REQUIRED_TODAY]
    published = 0
    for place in T11.municipalities:
        row = evaluated[("obligations_waived", "LAS-74c", place)]
        if not row.suppressed:
            assert back[place] == row.value
            published += 1
    assert published >= 2
    total = evaluated[("obligations_waived", "LAS-74c", None)]
    assert not total.suppressed and sum(back[p] for p in T11.municipalities) == total.value > 30
    hours = evaluated[("caseworker_hours_freed", None, None)]
    assert hours.value == pytest.approx(total.value * MINUTES["LAS-74c"] / 60)
    result = answer(cells, run, scenario, places)
    for m in result["municipalities"]:  # as published (here few are: test_what_if_service has more citizens)
        if m["municipality"] in T11.municipalities and not m["suppressed"]:
            assert -m["obligations_freed"] == back[m["municipality"]]
            assert -m["hours_freed"] == pytest.approx(back[m["municipality"]] * MINUTES["LAS-74c"] / 60)


def test_t11_extended_two_years_waives_the_reassessments_of_its_citizens_in_those_years(population):
    histories, engine = population
    end = date(2024, 12, 31)
    scenario = Scenario(title="T11 forlænget", trials=[trial(period={"start": T11.period.start, "end": end})])
    cells, run, _ = simulated(engine, scenario)
    assert (run.first, run.last) == (date(2018, 1, 1), end)
    expected: dict[tuple[str, str], Counter] = defaultdict(Counter)
    # the cases ever in one of T11's municipalities: the others' obligations the change cannot touch
    for h in (h for h in histories if any(e.data.get("municipality") in T11.municipalities for e in h)):
        horizon = max(max(date.fromisoformat(e.data["date"]) for e in h), AS_OF) + HORIZON
        for name, t11_end in (("today", T11.period.end), ("scenario", end)):
            for o in las_74c(h, horizon, every=True, t11_end=t11_end):
                if run.first <= o.due <= run.last:
                    expected[(o.municipality, f"{o.due:%Y-%m}")][f"{'waived' if o.waived_by else 'required'}_{name}"] += 1
    found = {(place, month): Counter({"required_today": n[REQUIRED_TODAY], "required_scenario": n[REQUIRED_SCENARIO],
                                      "waived_today": n[WAIVED_TODAY], "waived_scenario": n[WAIVED_SCENARIO]})
             for (place, month, rule), n in cells.numbers.items() if rule == "LAS-74c"}
    found = {key: +counts for key, counts in found.items() if +counts}
    assert found == {key: +counts for key, counts in expected.items() if +counts}
    newly_waived = sum(c["waived_scenario"] - c["waived_today"] for (_, month), c in expected.items() if month >= "2023-01")
    assert newly_waived > 20  # the years added
    assert all(c["waived_scenario"] == c["waived_today"] for (_, month), c in expected.items() if month < "2023-01")


def test_a_national_rollout_is_the_sum_of_rolling_it_out_municipality_by_municipality(population):
    _, engine = population
    period = {"start": date(2023, 1, 1), "end": date(2024, 12, 31)}
    national, _, _ = simulated(engine, Scenario(title="T11 i hele landet", trials=[
        trial(id="T11-DK", municipalities=sorted(municipalities()), period=period)]))
    by_one = {}
    for place in MUNICIPALITIES:
        by_one[place], _, _ = simulated(engine, Scenario(title=f"T11 i {place}", trials=[
            trial(id="T11-DK", municipalities=[place], period=period)]))
    assert national.numbers and set(national.numbers) >= {k for one in by_one.values() for k in one.numbers if k[1] >= "2023"}
    for key, numbers in national.numbers.items():
        assert by_one[key[0]].numbers[key] == numbers, key
        assert by_one[key[0]].citizens[key] == national.citizens[key], key
    freed = sum(n[REQUIRED_TODAY] - n[REQUIRED_SCENARIO] for n in national.numbers.values())
    assert freed == sum(n[REQUIRED_TODAY] - n[REQUIRED_SCENARIO] for place, one in by_one.items()
                        for key, n in one.numbers.items() if key[0] == place) > 20


def rule_with(parameter: str, value) -> dict:
    """LAS-74c with `parameter` at `value` from 2025-01-01."""
    rule = CATALOG.rules["LAS-74c"].model_dump()
    rule["parameters"][parameter]["values"][date(2025, 1, 1)] = {"value": value, "reference": "scenarie"}
    return rule


@pytest.mark.parametrize(("scenario", "field"), [
    ({"without_trials": ["T99"]}, "without_trials[0]"),
    ({"trials": [T11.model_dump(), T11.model_dump()]}, "trials[1].id"),
    ({"trials": [T11.model_dump()], "without_trials": ["T11"]}, "without_trials[0]"),
    ({"trials": [{**T11.model_dump(), "effects": [{"rule": "LAS-99", "effect": "waive"}]}]}, "trials[0].effects[0].rule"),
    ({"rules": [{**CATALOG.rules["LAS-74c"].model_dump(), "id": "LAS-75"}]}, "rules[0].id"),
    ({"rules": [{**CATALOG.rules["LAS-74c"].model_dump(), "schedule": "recurring"}]}, "rules[0].schedule"),
    ({"rules": [rule_with("required_months", "12")]}, "rules[0].parameters.required_months.values.2025-01-01"),
    ({"rules": [rule_with("required_months", -12)]}, "rules[0].parameters.required_months.values.2025-01-01"),
    ({"rules": [rule_with("required_months", 12.5)]}, "rules[0].parameters.required_months.values.2025-01-01"),
    ({"rules": [rule_with("window_months", 0)]}, "rules[0].parameters.window_months.values.2025-01-01"),
    ({"rules": [{**CATALOG.rules["LAS-74c"].model_dump(), "parameters": {
        "months": {"description": "x", "values": {date(2025, 1, 1): {"value": 1, "reference": "x"}}}}}]},
     "rules[0].parameters.months"),
    ({"trials": [{**CATALOG.trials["T19"].model_dump(), "effects": [
        {**CATALOG.trials["T19"].effects[0].model_dump(), "value": {"fp-loentilskud": {"first": ["soon"]}}}]}]},
     "trials[0].effects[0].value"),
])
def test_a_scenario_the_catalog_cannot_take_names_the_field(scenario, field):
    with pytest.raises(ScenarioError) as refused:
        Scenario.model_validate({"title": "Forkert", **scenario}).applied_to(CATALOG)
    assert [where for where, _ in refused.value.errors] == [field]


@pytest.mark.parametrize(("change", "where"), [
    ({"period": {"start": date(2023, 1, 1), "end": date(2022, 12, 31)}}, ("period",)),  # the day before: no
    ({"period": {"start": date(1, 1, 1)}}, ("period", "start")),
    ({"period": {"start": date(2023, 1, 1), "end": date(9999, 12, 31)}}, ("period", "end")),
    ({"effects": [{"rule": "LAS-74c", "effect": "modify", "parameter": "required_months", "value": 24}]}, ("effects", 0)),
    ({"effects": [{"rule": "LAS-74c", "effect": "waive", "in_a_row": 0}]}, ("effects", 0, "in_a_row")),
    ({"effects": [{"rule": "LAS-74c", "effect": "suspend", "value": 3}]}, ("effects", 0)),
])
def test_a_trial_the_fold_cannot_apply_is_no_trial(change, where):
    with pytest.raises(ValidationError) as refused:
        Trial.model_validate({**T11.model_dump(), **change})
    assert [e["loc"][:len(where)] for e in refused.value.errors()] == [where]


def test_a_trial_of_one_day_is_one():
    one_day = Trial.model_validate({**T11.model_dump(), "period": {"start": date(2023, 1, 1), "end": date(2023, 1, 1)}})
    assert one_day.period.contains(date(2023, 1, 1)) and not one_day.period.contains(date(2023, 1, 2))


def test_a_rule_changed_from_a_date_counts_from_that_month_everywhere():
    rule = CATALOG.rules["LAS-74c"].model_dump()
    for name, value in (("required_months", 24), ("window_months", 36)):
        rule["parameters"][name]["values"][date(2025, 1, 1)] = {"value": value, "reference": "scenarie"}
    scenario = Scenario.model_validate({"title": "24 af 36", "rules": [rule]})
    assert scenario.municipalities(CATALOG) is None
    assert scenario.months(CATALOG, date(2026, 7, 6)) == (date(2025, 1, 1), date(2026, 7, 6))
    changed = scenario.applied_to(CATALOG).rules["LAS-74c"]
    assert (changed.parameter("required_months", date(2024, 12, 31)), changed.parameter("required_months", date(2025, 1, 1))) \
        == (12, 24)


def cells_of(counts: dict[tuple, int]):
    """Hand-made cells: each with `n` citizens of its own behind every number (a sum's are its
    own too: what matters here is how many)."""
    def who(key, n):
        return {f"{key}-{i}" for i in range(n)}
    return {key: ([n, n, 0, 0, 0], [who(key, n)] * 2 + [set()] * 2 + [who(key, n)]) for key, n in counts.items()}


MONTHS = ["2023-01", "2023-02", "2023-03"]


def test_a_month_of_1_to_4_citizens_is_hidden_with_another_so_that_its_year_does_not_give_it_away():
    def hidden(jan, feb, mar, year):
        cells = cells_of({("851", "2023-01", None): jan, ("851", "2023-02", None): feb, ("851", "2023-03", None): mar,
                          ("851", "2023", None): year, ("851", None, None): year, (None, None, None): year})
        return protected(cells, ["851"], ["2023"], MONTHS, [])
    assert hidden(3, 7, 9, 19) == {("851", "2023-01", None), ("851", "2023-02", None)}  # the next fewest too
    assert hidden(5, 7, 0, 12) == set()  # 5 is enough; a month of none is no one
    assert hidden(4, 0, 0, 4) == {("851", "2023-01", None), ("851", "2023", None), ("851", None, None),
                                  (None, None, None)}  # no month left: the year, and the sums of it
    # two hidden, of 3 citizens together: the year less the third gives their sum, so it goes too
    assert hidden(1, 2, 7, 10) == {("851", m, None) for m in MONTHS}
    assert hidden(1, 4, 7, 12) == {("851", "2023-01", None), ("851", "2023-02", None)}  # 5 together: enough


def test_a_sum_over_years_municipalities_or_rules_with_a_hidden_part_is_hidden():
    """Another answer could leave the part out (ask other years, municipalities or rules): the
    difference of the two sums would give it away."""
    years = {("851", "2022", None): 3, ("851", "2023", None): 9, ("851", None, None): 12, (None, None, None): 12}
    assert protected(cells_of(years), ["851"], ["2022", "2023"], [], []) == {
        ("851", "2022", None), ("851", None, None), (None, None, None)}
    places = {("751", None, None): 8, ("461", None, None): 2, (None, None, None): 10}
    assert protected(cells_of(places), ["751", "461"], [], [], []) == {("461", None, None), (None, None, None)}
    rules = {("851", None, "A"): 9, ("851", None, "B"): 2, ("851", None, None): 11, (None, None, "A"): 9,
             (None, None, "B"): 2, (None, None, None): 11}
    assert protected(cells_of(rules), ["851"], [], [], ["A", "B"]) == {
        ("851", None, "B"), ("851", None, None), (None, None, "B"), (None, None, None)}
    assert protected(cells_of({**places, ("461", None, None): 5}), ["751", "461"], [], [], []) == set()


def test_no_hidden_cell_of_an_answer_can_be_recovered_from_a_sum(population):
    """T11 in every municipality for 2023 and 2024: within a year the hidden months are
    none or several, and the published add up to the year where none is hidden; a sum over years,
    rules or municipalities is published only with all its parts, and then adds up."""
    _, engine = population
    scenario = Scenario(title="T11 i hele landet i to år", trials=[trial(
        id="T11-2", municipalities=sorted(municipalities()), period={"start": date(2023, 1, 1), "end": date(2024, 12, 31)})])
    cells, run, places = simulated(engine, scenario)
    result = answer(cells, run, scenario, places)
    places_ = result["municipalities"]
    hidden_somewhere = 0
    for m in places_:
        for year in m["years"]:  # within a year: no month hidden alone
            months = [c for c in m["months"] if c["month"].startswith(year["year"])]
            hidden = sum(c["suppressed"] for c in [*months, year])
            assert hidden != 1
            hidden_somewhere += hidden
            if not hidden:
                assert sum(c["obligations_freed"] for c in months) == year["obligations_freed"]
        # a sum over years or rules is published only with every part
        for parts in (m["years"], m["rules"]):
            assert m["suppressed"] or not any(c["suppressed"] for c in parts)
            if not m["suppressed"]:
                assert sum(c["obligations_freed"] for c in parts) == m["obligations_freed"]
    total = result["total"]
    assert total["suppressed"] == any(m["suppressed"] for m in places_)
    assert hidden_somewhere and any(not m["suppressed"] and m["obligations_freed"] > 0 for m in places_)
