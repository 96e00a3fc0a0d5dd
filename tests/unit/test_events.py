from datetime import date

import pytest

from shared import events
from shared.events import parse_batch, parse_event
from shared.problems import Problem
from tests.events import CONTRACT_EXAMPLE, event, opened


def test_the_contract_example_parses():
    parsed = parse_event(CONTRACT_EXAMPLE)
    assert (parsed.name, parsed.case_id, parsed.key) == ("benefit.started", "case-42", ("jobcenter/851/momentum", "momentum-000123"))
    assert parsed.data == {"benefit": "ledighedsydelse", "date": "2019-01-01"}


def test_cpr_is_normalised():
    assert parse_event(opened("c", cpr="0101901234")).data["cpr"] == "010190-1234"


def refusal(document) -> tuple[int, dict[str, str]]:
    with pytest.raises(Problem) as caught:
        parse_event(document)
    return caught.value.status, {e.field: e.reason for e in caught.value.errors}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"subject": "has space"}, "subject"),
        ({"subject": "x" * 65}, "subject"),
        ({"type": "dk.frisag.case.exploded"}, "type"),
        ({"id": ""}, "id"),
        ({"time": "yesterday"}, "time"),
        ({"colour": "blue"}, "colour"),
        ({"data": {"benefit": "ledighedsydelse"}}, "data.date"),
        ({"data": {"benefit": "ledighedsydelse", "date": "2019-1-1"}}, "data.date"),
        ({"data": {"benefit": "ledighedsydelse", "date": "2019-02-30"}}, "data.date"),
        ({"data": {"benefit": "ledighedsydelse", "date": 20190101}}, "data.date"),
        ({"data": {"benefit": "lottery", "date": "2019-01-01"}}, "data.benefit"),
        ({"data": {"benefit": "ledighedsydelse", "date": "2019-01-01", "note": "x"}}, "data.note"),
    ],
)
def test_each_wrong_field_is_named(change, field):
    status, errors = refusal({**CONTRACT_EXAMPLE, **change})
    assert status == 422 and field in errors, errors


@pytest.mark.parametrize(
    "data, field",
    [
        ({"cpr": "0101901234", "municipality": "999", "date": "2019-01-01"}, "data.municipality"),
        ({"cpr": "0101901234", "municipality": 851, "date": "2019-01-01"}, "data.municipality"),
        ({"cpr": "3102901234", "municipality": "851", "date": "2019-01-01"}, "data.cpr"),
        ({"cpr": "01019012", "municipality": "851", "date": "2019-01-01"}, "data.cpr"),
    ],
)
def test_case_opened_checks_municipality_and_cpr(data, field):
    status, errors = refusal(event("case.opened", "c", **data))
    assert status == 422 and field in errors, errors


def test_a_batch_names_the_index_of_the_bad_event():
    with pytest.raises(Problem) as caught:
        parse_batch([opened("c"), {**CONTRACT_EXAMPLE, "data": {"benefit": "x", "date": "2019-01-01"}}])
    assert [e.field for e in caught.value.errors] == ["[1].data.benefit"]


@pytest.mark.parametrize("document", [[], {}, "x"])
def test_a_batch_must_be_a_non_empty_array(document):
    with pytest.raises(Problem):
        parse_batch(document)


@pytest.mark.parametrize("day, accepted", [
    ("1899-12-31", False), ("1900-01-01", True), ("2999-12-31", True), ("3000-01-01", False),
    ("0001-01-01", False), ("9998-11-27", False), ("9999-12-31", False),
])
def test_event_dates_lie_in_the_range_the_fold_can_handle(day, accepted):
    """Before 1900 no case history is real; after 2999 adding the fold's horizon (400 days and
    a schedule's months) could run past the calendar's end (9999-12-31)."""
    document = event("benefit.started", "c", benefit="ledighedsydelse", date=day)
    if accepted:
        assert parse_event(document).data["date"] == day
        return
    status, errors = refusal(document)
    assert status == 422 and set(errors) == {"data.date"}, errors
    assert "1900-01-01" in errors["data.date"] and "2999-12-31" in errors["data.date"]


@pytest.mark.parametrize("cpr", ["٠١٠١٩٠-١٢٣٤", "０１０１９０１２３４"])
def test_a_cpr_number_in_other_digits_is_refused(cpr):
    assert refusal(opened("c", cpr=cpr)) == (422, {"data.cpr": "must be DDMMYY-SSSS or DDMMYYSSSS (digits 0-9)"})


@pytest.mark.parametrize("change", [{"data": {"form": "LÆ٢٦٥", "date": "2019-01-01"}}])
def test_forms_take_ascii_digits_only(change):
    document = {**event("medical-certificate.obtained", "c", form="LÆ265", date="2019-01-01"), **change}
    assert refusal(document)[1].keys() == {"data.form"}


def test_trials_take_ascii_digits_only():
    document = event("target-group.assessed", "c", trial="T1٣", in_target_group=True, date="2019-01-01")
    assert refusal(document)[1].keys() == {"data.trial"}


@pytest.mark.parametrize(
    "cpr, accepted",
    [("301126-4234", True), ("011226-4234", True), ("021226-4234", False), ("010130-4234", False)],
)
def test_a_birth_after_today_is_refused(monkeypatch, cpr, accepted):
    monkeypatch.setattr(events, "_danish_today", lambda: date(2026, 12, 1))
    document = opened("c", cpr=cpr, date="2026-12-01")
    if accepted:
        assert parse_event(document).data["cpr"] == cpr
    else:
        status, errors = refusal(document)
        assert status == 422 and "after today (2026-12-01)" in errors["data.cpr"], errors


@pytest.mark.parametrize("opened_on, accepted", [("2019-03-14", False), ("2019-03-15", True), ("2019-03-16", True)])
def test_a_birth_after_the_case_was_opened_is_refused(opened_on, accepted):
    document = opened("c", cpr="150319-4234", date=opened_on)  # born 2019-03-15
    if accepted:
        parse_event(document)
    else:
        assert "after the case's opening (data.date)" in refusal(document)[1]["data.cpr"]


CPR_IN_TEXT = "holds what looks like a CPR number"


@pytest.mark.parametrize(
    "document, field",
    [
        (event("rehab-team.meeting-held", "c", recommendation="borger 271183-4821 anbefales ressourceforløb",
               date="2019-01-01"), "data.recommendation"),
        (event("rehab-team.meeting-held", "c", recommendation="cpr ٢٧١١٨٣٤٨٢١", date="2019-01-01"),
         "data.recommendation"),
        (event("case.assigned", "c", caseworker="2711834821", date="2019-01-01"), "data.caseworker"),
        (event("assessment.completed", "c", kind="cpr-271183-4821", date="2019-01-01"), "data.kind"),
        (opened("030472-3917"), "subject"),
        (opened("case:0304723917"), "subject"),
    ],
)
def test_a_cpr_number_outside_data_cpr_is_refused(document, field):
    status, errors = refusal(document)
    assert status == 422 and CPR_IN_TEXT in errors[field], errors
    assert "4821" not in errors[field] and "3917" not in errors[field]  # not echoed back


def test_text_with_other_numbers_is_accepted():
    recommendation = "ressourceforløb i 52 uger, 2 samtaler, tlf. 12345678, sag 2019-004711"
    assert parse_event(event("rehab-team.meeting-held", "c", recommendation=recommendation, date="2019-01-01"))
    assert parse_event(opened("3f2a0101-9012-4a5b-8c6d-010190123456")).case_id.startswith("3f2a")


@pytest.mark.parametrize("field", ["id", "source"])
@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "a\x7fb"])
def test_ids_and_sources_hold_no_control_characters(field, value):
    status, errors = refusal({**CONTRACT_EXAMPLE, field: value})
    assert status == 422 and field in errors, errors


@pytest.mark.parametrize("datacontenttype", [
    "application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8",
    'Application/JSON; charset="utf-8"',
])
def test_json_data_is_accepted_with_its_parameters(datacontenttype):
    assert parse_event({**CONTRACT_EXAMPLE, "datacontenttype": datacontenttype}).data["benefit"] == "ledighedsydelse"


@pytest.mark.parametrize("datacontenttype", [
    "application/json; charset=iso-8859-1", "text/plain", "application/xml", "application/jsonx", "json", "",
])
def test_data_in_another_media_type_or_charset_is_refused(datacontenttype):
    status, errors = refusal({**CONTRACT_EXAMPLE, "datacontenttype": datacontenttype})
    assert status == 422 and set(errors) == {"datacontenttype"}, errors
