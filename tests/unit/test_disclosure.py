"""Issue 15.1-2: over generated populations, nothing suppressed can be computed from the other
numbers one answer publishes. The truth each check needs (how many citizens a hidden cell has)
comes from the same evaluation with nothing suppressed."""

from collections import defaultdict
from datetime import date
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.reporting import evaluation
from services.reporting.evaluation import Row, comparison_default, evaluate, periods_for, series
from services.reporting.metrics import CATALOG as METRICS
from shared.catalog import Catalog
from shared.population import Population
from tests.unit.test_evaluation import TODAY, stored, stream_events

CATALOG = Catalog.load()
THRESHOLD = 5
# numbers that add up over municipalities (and over months): a total is the sum of its cells
ADDITIVE = {"obligations_required_ordinary", "obligations_required", "obligations_waived", "caseworker_hours_freed",
            "ly_spells_ended", "permitted_actions"}


def unsuppressed(compute):
    with mock.patch.object(evaluation, "SUPPRESS_BELOW", 0):
        return compute()


def key(r: Row) -> tuple:
    return r.metric, r.group, r.period, r.rule, r.municipality


def leaks(rows: list[Row], truth: list[Row], months: list[Row], true_months: list[Row]) -> list[str]:
    """What an evaluator could compute from the published rows of one answer (the form has the
    evaluation's totals and the months of the period beside each other)."""
    true = {key(r): r for r in truth + true_months}
    found = []
    for r in rows + months:
        if r.suppressed and (r.value is not None or r.n is not None):
            found.append(f"{key(r)}: suppressed, yet shown")
        elif not r.suppressed and r.n is not None and 0 < r.n < THRESHOLD:
            found.append(f"{key(r)}: published over {r.n} citizens")
    families: dict[tuple, dict] = defaultdict(lambda: {"cells": [], "total": None})
    for r in rows:
        if r.metric != "did_estimate":
            family = families[(r.metric, r.group, r.period, r.rule)]
            if r.municipality is None:
                family["total"] = r
            else:
                family["cells"].append(r)
    for r in months:  # a group's months add up to its total of the period, published in the same form
        if r.metric not in ADDITIVE:  # a count on one day (ly_over_18m_*), a mean, a share: months do not add up
            continue
        family = families[("months", r.metric, r.group)]
        family["cells"].append(r)
        family["total"] = next((t for t in rows if t.metric == r.metric and t.group == r.group and t.period == "trial"
                                and t.municipality is None and t.rule is None), None)
    for name, family in families.items():
        total, hidden = family["total"], [c for c in family["cells"] if c.suppressed]
        if total is None:
            continue
        if not total.suppressed:
            if len(hidden) == 1:
                found.append(f"{key(hidden[0])}: the total less the other cells")
            if hidden and sum(true[key(c)].n for c in hidden) < THRESHOLD:
                found.append(f"{name}: the hidden cells together are of fewer than {THRESHOLD} citizens")
        elif family["cells"] and not hidden and name[0] in ADDITIVE:
            found.append(f"{name}: the total is the sum of its cells")
    # each rule here is changed by one trial only: ordinary = required + waived, hours = waived's minutes
    by_cell: dict[tuple, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        if r.metric in ("obligations_required_ordinary", "obligations_required", "obligations_waived"):
            by_cell[(r.group, r.period, r.municipality, r.rule)][r.metric] = r
            by_cell[("hours", r.group, r.period, r.municipality)][f"{r.metric} {r.rule}"] = r
        elif r.metric == "caseworker_hours_freed":
            by_cell[("hours", r.group, r.period, r.municipality)][r.metric] = r
    for name, linked in by_cell.items():
        hidden = [r for r in linked.values() if r.suppressed]
        if hidden and len(hidden) < len(linked):
            found.append(f"{name}: {[key(r) for r in hidden]} from the linked counts published beside")
    return found


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), cases=st.integers(30, 300), trial=st.sampled_from(["T11", "T6", "T10"]),
       metric=st.sampled_from(["ly_spells_ended", "obligations_waived", "caseworker_hours_freed", "ly_over_18m_at_end"]))
def test_no_suppressed_value_can_be_derived_from_one_answer(seed, cases, trial, metric):
    histories = [stream_events(docs) for docs in Population(seed=seed, start=date(2016, 1, 1)).cases(cases)]
    facts = stored(histories)
    t = CATALOG.trials[trial]
    periods = periods_for(t, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    comparison = comparison_default(facts, CATALOG, t, periods)[0] or ["101", "751"]
    rows = evaluate(facts, CATALOG, t, periods, comparison)
    truth = unsuppressed(lambda: evaluate(facts, CATALOG, t, periods, comparison))
    months = series(facts, CATALOG, t, metric, *periods["trial"], comparison)
    true_months = unsuppressed(lambda: series(facts, CATALOG, t, metric, *periods["trial"], comparison))
    assert leaks(rows, truth, months, true_months) == []


def test_the_readme_table_is_the_metrics_catalog():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for m in METRICS.values():
        assert f"| `{m.id}` | {m.label_da} | {m.unit} | {m.definition_en} |" in readme, m.id
    assert set(METRICS) >= set(evaluation.METRICS) | {"did_estimate"}
