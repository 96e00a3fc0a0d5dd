import pytest

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
