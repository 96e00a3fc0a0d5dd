"""What-if's fold, which folds under a scenario only the rules it changes and reads the events
its own way, against the plain reference: every stored history (as the store hands it out)
folded whole under both catalogs."""

from datetime import date

import pytest

from services.reporting.whatif import Cells, Run, Scenario, simulate, touched_cases
from shared.catalog import Trial
from shared.municipalities import municipalities
from shared.obligations import fold_timeline
from shared.timeline import Timeline
from tests.unit.test_what_if import AS_OF, CATALOG, HORIZON, T11, stored


@pytest.fixture(scope="module")
def store():
    return stored(33, 600)[1]


def rule_changed() -> Scenario:
    rule = CATALOG.rules["LAS-74c"].model_dump()
    for name, value in (("required_months", 6), ("window_months", 24)):
        rule["parameters"][name]["values"][date(2021, 1, 1)] = {"value": value, "reference": "scenarie"}
    return Scenario.model_validate({"title": "6 af 24", "rules": [rule]})


SCENARIOS = {
    "national rollout": Scenario(title="T11 i hele landet", trials=[Trial.model_validate({
        **T11.model_dump(), "id": "T11-DK", "municipalities": sorted(municipalities()),
        "period": {"start": date(2023, 1, 1), "end": date(2024, 12, 31)}})]),
    "a trial left out": Scenario(title="Uden T11", without_trials=["T11"]),
    "a rule changed": rule_changed(),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_scenario_folded_rule_by_rule_is_every_rule_folded_under_both_catalogs(store, name):
    scenario = SCENARIOS[name]
    changed = scenario.applied_to(CATALOG)
    run = Run(CATALOG, changed, date(2016, 1, 1), AS_OF + HORIZON, AS_OF)
    cases = touched_cases(store.engine, scenario.municipalities(CATALOG))
    found = simulate(store.engine, run, cases, None, lambda share: None)
    expected = Cells()
    for case_id in cases:
        events = store.history(case_id)
        timeline = Timeline.build(events)
        horizon = max(timeline.last_date, AS_OF) + HORIZON
        expected.add(timeline.citizen or case_id,
                     fold_timeline(timeline, CATALOG, horizon, trials=True, complete=True),
                     fold_timeline(timeline, changed, horizon, trials=True, complete=True), run)
    assert sum(n[0] != n[1] or n[2] != n[3] for n in expected.numbers.values()) > 5  # the scenario changes something
    assert (found.numbers, found.citizens, found.cases) == (expected.numbers, expected.citizens, len(cases))
