"""The what-if pages' helpers (services/web/whatif.py): the form's fields made into the body of
the reporting service's `POST /what-if` (expected bodies written out by hand), its refusals put
on the form's fields, the scenario told in words, a year's share of a period's numbers."""

import pytest

from services.web.app import templates
from services.web.whatif import (
    BLANK,
    cell,
    effect_rows,
    form_from_trial,
    per_year,
    refused_fields,
    scenario_in_words,
    scenario_request,
)
from shared.catalog import Catalog
from shared.municipalities import municipalities

CATALOG = Catalog.load()
IDS = set(CATALOG.trials)
EVERY = sorted(municipalities())
T11 = CATALOG.trials["T11"].model_dump(mode="json")  # as the reporting service's GET /trials has it


def t11_form(**changes: str) -> dict[str, str]:
    return {**form_from_trial(T11), "titel": "T11 forlænget", **changes}


def test_the_form_made_from_t11_holds_its_kommuner_period_and_waiver_then_three_empty_effect_rows():
    form = form_from_trial(T11)
    assert (form["grundlag"], form["maade"], form["kommuner"]) == ("T11", "replace", "851, 849, 787, 840")
    assert (form["start"], form["slut"], form["fra"], form["til"]) == ("2018-07-01", "2022-12-31", "", "")
    assert effect_rows(form) == [("LAS-74c", "waive"), ("", "waive"), ("", "waive"), ("", "waive")]
    blank = form_from_trial(None)
    assert (blank["grundlag"], blank["maade"], blank["kommuner"]) == ("", "add", "")
    assert effect_rows(blank) == [("", "waive")] * 3


def test_t11_extended_a_year_replaces_t11_with_the_same_document_but_its_end():
    body, errors = scenario_request(t11_form(slut="2023-12-31"), T11, IDS, EVERY)
    assert errors == {}
    assert body == {"scenario": {"title": "T11 forlænget", "trials": [
        {**T11, "period": {"start": "2018-07-01", "end": "2023-12-31"},
         "effects": [{"rule": "LAS-74c", "effect": "waive"}]}]}, "from": None, "to": None}


def test_added_beside_the_catalog_it_needs_an_id_the_catalog_does_not_have():
    body, errors = scenario_request(t11_form(maade="add", id="T11"), T11, IDS, EVERY)
    assert set(errors) == {"id"} and "T11 findes allerede" in errors["id"]
    body, errors = scenario_request(t11_form(maade="add", id=" "), T11, IDS, EVERY)
    assert set(errors) == {"id"}
    body, errors = scenario_request(t11_form(maade="add", id="T25", kommuner="461"), T11, IDS, EVERY)
    assert errors == {} and [t["id"] for t in body["scenario"]["trials"]] == ["T25"]
    assert body["scenario"]["trials"][0]["municipalities"] == ["461"]


def test_without_the_trial_the_scenario_only_leaves_it_out_and_the_draft_is_not_read():
    body, errors = scenario_request(t11_form(maade="without", kommuner="", start="nonsense"), T11, IDS, EVERY)
    assert errors == {}
    assert body == {"scenario": {"title": "T11 forlænget", "without_trials": ["T11"]}, "from": None, "to": None}


def test_a_blank_draft_can_only_be_added_and_is_for_everyone_in_its_kommuner():
    form = {**form_from_trial(None), "titel": "Nyt", "id": "T25", "navn": "Færre revurderinger", "kommuner": "851",
            "start": "2026-01-01", "regel_0": "LAS-74c", "virkning_0": "suspend", "fra": "2026-01-01", "til": "2026-06-30"}
    assert set(scenario_request({**form, "maade": "replace"}, None, IDS, EVERY)[1]) == {"maade"}
    assert set(scenario_request({**form, "maade": "without"}, None, IDS, EVERY)[1]) == {"maade"}
    body, errors = scenario_request(form, None, IDS, EVERY)
    assert errors == {}
    assert body == {"scenario": {"title": "Nyt", "trials": [
        {**BLANK, "id": "T25", "title": "Færre revurderinger", "municipalities": ["851"],
         "period": {"start": "2026-01-01", "end": None}, "effects": [{"rule": "LAS-74c", "effect": "suspend"}]}]},
        "from": "2026-01-01", "to": "2026-06-30"}


def test_kommuner_as_written_once_each_in_order_or_the_whole_country_or_at_least_one():
    body, _ = scenario_request(t11_form(kommuner=" 851, 849;787\n 840,851 "), T11, IDS, EVERY)
    assert body["scenario"]["trials"][0]["municipalities"] == ["851", "849", "787", "840"]
    body, errors = scenario_request(t11_form(kommuner="", hele_landet="ja"), T11, IDS, EVERY)
    assert errors == {} and body["scenario"]["trials"][0]["municipalities"] == EVERY and len(EVERY) == 98
    assert set(scenario_request(t11_form(kommuner=" , "), T11, IDS, EVERY)[1]) == {"kommuner"}
    # a code that is no kommune goes as written: the reporting service names it
    assert scenario_request(t11_form(kommuner="851, 999"), T11, IDS, EVERY)[0]["scenario"]["trials"][0][
        "municipalities"] == ["851", "999"]


@pytest.mark.parametrize(("end", "wrong"), [("2018-07-01", False), ("2018-06-30", True), ("", False), ("31-12-2023", False)])
def test_a_period_may_end_the_day_it_starts_but_not_before(end, wrong):
    # a date not written as one goes as written (the reporting service refuses it on its field)
    body, errors = scenario_request(t11_form(slut=end), T11, IDS, EVERY)
    assert ("slut" in errors) == wrong
    assert body["scenario"]["trials"][0]["period"] == {"start": "2018-07-01", "end": end or None}


def test_empty_effect_rows_are_left_out_a_rule_without_waive_or_suspend_is_wrong_and_other_effects_stay():
    base = {**T11, "effects": [{"rule": "LAB-jobsamtale", "effect": "modify", "parameter": "interval", "value": 90},
                               {"rule": "LAS-74c", "effect": "waive"}]}
    form = {**form_from_trial(base), "titel": "x"}
    assert effect_rows(form)[0] == ("LAS-74c", "waive")  # the form edits waivers and suspensions only
    form.update(regel_0="", regel_1="LAB-tilbud", virkning_1="suspend", regel_2="", regel_3="LAS-74c", virkning_3="waive")
    body, errors = scenario_request(form, base, IDS, EVERY)
    assert errors == {}
    assert body["scenario"]["trials"][0]["effects"] == [
        {"rule": "LAB-tilbud", "effect": "suspend"}, {"rule": "LAS-74c", "effect": "waive"},
        {"rule": "LAB-jobsamtale", "effect": "modify", "parameter": "interval", "value": 90}]
    assert set(scenario_request({**form, "virkning_1": "modify"}, base, IDS, EVERY)[1]) == {"virkninger"}


def test_the_services_refusals_land_on_the_forms_fields_the_first_for_each():
    said = refused_fields([
        {"field": "body.scenario.trials.0.period.end", "reason": "Input should be a valid date"},
        {"field": "body.scenario.trials.0.period.end", "reason": "second"},
        {"field": "body.scenario.trials.0.municipalities", "reason": "unknown kommunekoder ['999']"},
        {"field": "scenario.trials[0].effects[2].rule", "reason": "no rule LAS-99 in the catalog"},
        {"field": "scenario.without_trials[0]", "reason": "no trial T99 in the catalog"},
        {"field": "body.scenario.title", "reason": "too short"},
        {"field": "to", "reason": "after 2028-01-07"},
        {"field": "body.from", "reason": "Input should be a valid date"},
        {"field": "body.scenario.rules.0.id", "reason": "x"},
        {"field": "body.scenario.trials.0.periodic", "reason": "extra"},  # not the period's: a field of its own
    ])
    assert list(said) == ["slut", "kommuner", "virkninger", "maade", "titel", "til", "fra", ""]
    assert said["slut"].startswith("Skriv slutdatoen") and said["kommuner"].startswith("Skriv kommunekoder")
    assert said[""] == "Rapporteringstjenesten afviste feltet scenario.rules.0.id."


def test_the_scenario_in_words():
    extended = {**T11, "period": {"start": "2018-07-01", "end": "2023-12-31"}}
    request = {"scenario": {"title": "x", "trials": [extended, {**extended, "id": "T25", "municipalities": EVERY,
                                                                "period": {"start": "2026-01-01", "end": None},
                                                                "effects": []}],
                            "without_trials": ["T6"]}}
    assert scenario_in_words(request, CATALOG) == [
        ("T11 (ændrer katalogets forsøg): Ledighedsydelse - fritagelse for revurdering i 12. måned indenfor 18 måneder, "
         "i Aalborg (851), Jammerbugt (849), Thisted (787), Rebild (840), fra 1. juli 2018 til 31. december 2023. "
         "Forsøget fritager for Revurdering af ledighedsydelse efter 12 af 18 måneder (LAS § 74 c)."),
        ("T25 (nyt forsøg): Ledighedsydelse - fritagelse for revurdering i 12. måned indenfor 18 måneder, i hele landet "
         "(alle 98 kommuner), fra 1. januar 2026 og indtil videre. Forsøget ændrer ingen regler."),
        f"Uden T6 ({CATALOG.trials['T6'].title}): som om forsøget aldrig havde været."]


def test_a_year_of_a_period_and_a_hidden_cell():
    assert per_year(10, 24) == 5 and per_year(3, 1) == 36 and per_year(7, 12) == 7
    assert per_year(None, 12) is None and per_year(5, 0) is None
    assert cell(1234.5, False, "timer") == "1.234,5" and cell(-3, False) == "−3" and cell(0, False) == "0"
    assert cell(12, True) == "–" and cell(None, False) == "–"


def test_a_running_jobs_page_says_how_far_it_is_and_asks_again_by_itself_without_javascript():
    job = {"id": "00000000-0000-0000-0000-000000000000", "status": "running", "progress": 0.4, "result": None,
           "request": {"scenario": {"title": "T11 forlænget"}}}
    html = templates.get_template("whatif.html").render(title="Scenarie: T11 forlænget", job=job, refresh=3, user=None,
                                                        csrf="x")
    assert '<meta http-equiv="refresh" content="3">' in html and "40 % af sagerne er foldet" in html
    assert 'id="i-alt"' not in html
    done = templates.get_template("whatif.html").render(title="x", job={**job, "status": "failed", "error": "boom"},
                                                        refresh=None, user=None, csrf="x")
    assert "http-equiv" not in done and "kunne ikke regnes igennem (boom)" in done


@pytest.mark.parametrize(("period", "effects", "said"), [
    ({"start": "2023-01-01", "end": None}, [{"rule": "LAS-74c", "effect": "waive"}],
     "og indtil videre. Forsøget fritager for Revurdering"),
    ({"start": "2023-01-01", "end": "2024-01-01"}, [], "til 1. januar 2024. Forsøget ændrer ingen regler."),
])
def test_an_open_ended_trial_or_one_without_effects_is_told_in_words(period, effects, said):
    """As the reporting service keeps a request: every field named, an open end null."""
    request = {"scenario": {"title": "x", "trials": [{"id": "T25", "title": "Udkast", "seeds": [], "municipalities": ["851"],
                                                      "period": period, "target_group": "all", "effects": effects}],
                            "without_trials": [], "rules": []}, "from": None, "to": None}
    (sentence,) = scenario_in_words(request, CATALOG)
    assert sentence.startswith("T25 (nyt forsøg): Udkast, i Aalborg (851), fra 1. januar 2023 ") and said in sentence
