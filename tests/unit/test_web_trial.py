"""The trial page's helpers (services/web/app.py) on hand-written rows of the reporting API's
shape: a suppressed cell is "undertrykt" and never its number, no data is "–", and each table
cell comes from its own group, period and kommune."""

from services.web.app import comparison_query, effects_in_danish, evaluation_tables, monthly, shown

METRICS = {"obligations_waived": {"label_da": "Pligter fritaget af forsøget", "unit": "pligter"},
           "exits_to_job_share": {"label_da": "Andel afgået til job", "unit": "andel"}}


def row(metric, group, period, value, municipality=None, rule=None, suppressed=False):
    return {"metric": metric, "rule": rule, "group": group, "period": period, "municipality": municipality,
            "value": value, "suppressed": suppressed}


def test_a_cell_is_its_number_undertrykt_or_a_dash():
    assert shown(row("m", "trial", "trial", 1234.5), "timer") == "1.234,5"
    assert shown(row("m", "trial", "trial", 0.25), "andel") == "25 %"
    assert shown(row("m", "trial", "trial", None, suppressed=True), "borgere") == "undertrykt"
    assert shown(row("m", "trial", "trial", None), "andel") == "–" and shown(None, "andel") == "–"


def test_the_months_of_both_spans_in_order_with_gaps_where_suppressed():
    rows = [row("x", "trial", "2018-07", 6), row("x", "comparison", "2018-07", None, suppressed=True),
            row("x", "trial", "2018-06", 0), row("x", "comparison", "2018-06", 0)]
    months, values, cells = monthly(rows, "borgere")
    assert months == ["2018-06", "2018-07"]
    assert values == {"trial": [0, 6], "comparison": [0, None]}
    assert cells == {"2018-06": ["0", "0"], "2018-07": ["6", "undertrykt"]}


def test_the_evaluation_tables_put_each_cell_in_its_place():
    rows = [row("obligations_waived", "trial", "baseline", 0, rule="LAS-74c"),
            row("obligations_waived", "trial", "trial", 33, rule="LAS-74c"),
            row("obligations_waived", "comparison", "baseline", 1, rule="LAS-74c"),
            row("obligations_waived", "comparison", "trial", None, rule="LAS-74c", suppressed=True),
            row("obligations_waived", "trial", "trial", None, "851", "LAS-74c", suppressed=True),
            row("obligations_waived", "trial", "baseline", 0, "851", "LAS-74c"),
            row("obligations_waived", "comparison", "trial", 7, "461", "LAS-74c"),
            row("exits_to_job_share", "trial", "trial", 0.3),
            {**row("did_estimate", "trial", "trial", 0.1), "of": "exits_to_job_share"}]
    totals, places = evaluation_tables(rows, METRICS)
    # the metrics catalog's order; before and during for the trial group, then the comparison group
    assert totals == [("Pligter fritaget af forsøget, LAS-74c", ["0", "33", "1", "undertrykt"]),
                      ("Andel afgået til job", ["–", "30 %", "–", "–"])]
    # the trial's kommuner first, then the comparison group's; by name
    assert places == [("Aalborg (851)", "Pligter fritaget af forsøget, LAS-74c", ["0", "undertrykt"]),
                      ("Odense (461)", "Pligter fritaget af forsøget, LAS-74c", ["–", "7"])]


def test_a_comparison_group_is_of_kommuner_outside_the_trial():
    assert comparison_query("T11", []) == {}  # the reporting service's default
    assert comparison_query("T11", ["461", "751", "461"]) == {"comparison": "461,751"}
    assert comparison_query("T11", ["999"]) is None  # no kommune
    assert comparison_query("T11", ["461", "851"]) is None  # Aalborg is in T11


def test_effects_name_the_rule_and_its_legal_reference():
    assert effects_in_danish([{"rule": "LAS-74c", "effect": "waive"}]) == [
        "fritager for: Revurdering af ledighedsydelse efter 12 af 18 måneder (LAS § 74 c)"]
    assert effects_in_danish([{"rule": "no-such-rule", "effect": "permit"}]) == ["tillader efter: no-such-rule"]
