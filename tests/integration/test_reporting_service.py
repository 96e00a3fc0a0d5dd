"""The reporting service over HTTP, fed through the embedded stream and through the real broker:
the T11 scenario, LY citizens in Aalborg (in the trial) and Aarhus (not)."""

import csv
import io
import shutil
import time

import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from shared.catalog import CATALOG_DIR
from tests.events import benefit_ended, benefit_started, event, opened

BATCH = {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture(params=["embedded", "kafka"])
def services(request, tmp_path, serve):
    if request.param == "embedded":
        common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    else:
        common = {"database_url": request.getfixturevalue("database_url"),
                  "kafka_bootstrap_servers": request.getfixturevalue("kafka"),
                  "kafka_topic": request.getfixturevalue("topic"), "kafka_topic_partitions": 3,
                  "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
            serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common)))) as reporting:
        yield case, reporting


def ly_citizens(prefix: str, municipality: str, count: int) -> list[dict]:
    documents = []
    for i in range(count):
        c = f"{prefix}-{i}"
        documents += [opened(c, municipality=municipality, date="2017-01-01", cpr=f"0101{60 + i:02d}-{1000 + i}"),
                      benefit_started(c, date="2017-01-01"),
                      event("conversation.held", c, kind="jobsamtale", date="2019-03-01")]
        if i % 2 == 0:
            documents.append(benefit_ended(c, date="2020-06-30", reason="job"))
    return documents


def test_the_t11_evaluation_over_http(services):
    case, reporting = services
    batch = ly_citizens("aal", "851", 6) + ly_citizens("aar", "751", 6)
    assert case.post("/events", json=batch, headers=BATCH).status_code == 201

    deadline = time.monotonic() + 60
    while (status := reporting.get("/status").json())["cases"] < 12 or status["stale"]:  # all 12 derived
        assert time.monotonic() < deadline, "the reporting service did not catch up"
        time.sleep(0.2)
    answer = reporting.get("/trials/T11/evaluation", params={"from": "2019-01-01", "to": "2020-12-31"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["groups"] == {"trial": ["851", "849", "787", "840"], "comparison": ["751"]}
    assert body["periods"]["baseline"] == {"from": "2016-06-30", "to": "2018-06-30"}  # as long, just before 2018-07-01
    rows = {(r["metric"], r["rule"] or r.get("of"), r["group"], r["period"], r["municipality"]): r for r in body["rows"]}
    waived = rows[("obligations_waived", "LAS-74c", "trial", "trial", "851")]
    # due 2019-01-01, 2020-01-01 and 2020-12-31 for the three still on LY, the first two for the
    # three whose LY ended on 2020-06-30: 15 re-assessments, all waived in Aalborg
    assert waived["value"] == 15 and waived["n"] == 6
    assert rows[("obligations_waived", "LAS-74c", "comparison", "trial", None)]["value"] == 0
    assert rows[("obligations_required", "LAS-74c", "comparison", "trial", "751")]["value"] == 15
    ended = rows[("ly_spells_ended", None, "trial", "trial", None)]
    assert (ended["value"], ended["n"], ended["suppressed"]) == (None, None, True)  # three citizens: suppressed
    over = rows[("ly_over_18m_at_start", None, "trial", "trial", None)]
    assert (over["value"], over["n"]) == (6, 6)  # on LY since 2017-01-01, 24 months at 2019-01-01
    hours = rows[("caseworker_hours_freed", None, "trial", "trial", None)]
    assert hours["value"] == 15 * 120 / 60

    answer = reporting.get("/trials/T11/evaluation", params={"from": "2019-01-01", "to": "2020-12-31"},
                           headers={"accept": "text/csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="evaluering-T11-2019-01-01-2020-12-31.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM Danish Excel needs to read UTF-8
    table = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    assert len(table) == len(body["rows"])
    assert list(table[0]) == ["mål", "betegnelse", "regel", "forskel i", "gruppe", "periode", "kommune", "værdi",
                              "borgere", "undertrykt", "95 %-interval, nedre", "95 %-interval, øvre",
                              "andre forsøg i gang", "delt med"]
    by_key = {(r["mål"], r["gruppe"], r["periode"], r["kommune"]): r for r in table}
    freed = by_key[("caseworker_hours_freed", "forsøgskommuner", "under forsøget", "")]
    assert (freed["værdi"], freed["betegnelse"]) == ("30", "Frigjorte sagsbehandlertimer")
    suppressed = by_key[("ly_spells_ended", "forsøgskommuner", "under forsøget", "")]
    assert (suppressed["værdi"], suppressed["borgere"], suppressed["undertrykt"]) == ("", "", "ja")
    values = [r["værdi"] for r in table if r["værdi"]]
    assert any("," in v for v in values) and not any("." in v for v in values)  # a decimal comma
    series = reporting.get("/trials/T11/series", params={"metric": "ly_over_18m_at_start", "from": "2019-01-01",
                                                         "to": "2020-12-31"}, headers={"accept": "text/csv"})
    assert series.content.startswith(b"\xef\xbb\xbf") and "attachment" in series.headers["content-disposition"]
    months = list(csv.DictReader(io.StringIO(series.content.decode("utf-8-sig")), delimiter=";"))
    assert len(months) == 2 * 24 and months[0]["periode"] == "2019-01"
    catalog = {m["id"]: m for m in reporting.get("/metrics-catalog").json()}
    assert {r["metric"] for r in body["rows"]} <= set(catalog)
    assert catalog["caseworker_hours_freed"]["label_da"] == "Frigjorte sagsbehandlertimer"


def test_monthly_series_and_the_evaluation_form(services):
    case, reporting = services
    assert case.post("/events", json=ly_citizens("aal", "851", 6) + ly_citizens("aar", "751", 5), headers=BATCH).status_code == 201
    params = {"metric": "ly_over_18m_at_end", "from": "2019-01-01", "to": "2020-12-31"}

    def june_2020():
        rows = reporting.get("/trials/T11/series", params=params).json()["rows"]
        return {r["group"]: r for r in rows if r["period"] == "2020-06"}

    deadline = time.monotonic() + 60
    while june_2020().get("trial", {}).get("value") != 6:
        assert time.monotonic() < deadline, "the reporting service did not catch up"
        time.sleep(0.2)
    june = june_2020()
    assert (june["comparison"]["value"], june["comparison"]["n"]) == (5, 5)  # all still on LY on 30 June
    july = {r["group"]: r for r in reporting.get("/trials/T11/series", params=params).json()["rows"] if r["period"] == "2020-07"}
    assert july["trial"]["value"] is None and july["trial"]["suppressed"]  # three left LY on 30 June
    assert len(reporting.get("/trials/T11/series", params=params).json()["rows"]) == 2 * 24
    # the baseline's months, for a chart from before the trial: 30 June 2016 to 30 June 2018, as long
    # as the period; none of them over 18 months on LY at the month's end (from 1 January 2017: 18
    # months on 1 July 2018), a published 0
    baseline = reporting.get("/trials/T11/series", params={**params, "span": "baseline"}).json()
    assert baseline["span"] == {"from": "2016-06-30", "to": "2018-06-30"}
    assert [r["period"] for r in baseline["rows"][::2]] == [f"{y}-{m:02d}" for y in (2016, 2017, 2018) for m in range(1, 13)
                                                           if "2016-06" <= f"{y}-{m:02d}" <= "2018-06"]
    assert {(r["group"], r["value"]) for r in baseline["rows"] if r["period"] == "2018-06"} == {("trial", 0), ("comparison", 0)}
    assert reporting.get("/trials/T11/series", params={**params, "span": "all"}).status_code == 422

    page = reporting.get("/trials/T11/form", params={"from": "2019-01-01", "to": "2020-12-31"})
    assert page.headers["content-type"].startswith("text/html")
    assert "7. Forsøgets resultater" in page.text and "<svg" in page.text and "polyline" in page.text
    assert "Forsøget er godkendt af ministeren." in page.text  # field 5, from the catalog
    assert "seed" not in page.text and "@media print" in page.text
    for danish in ("Forsøgskommuner, før forsøget", "Sammenligningsgruppe, under forsøget", "Aalborg (851)",
                   "Aarhus (751)", "Borgere over 18 måneder på ledighedsydelse ved periodens slutning"):
        assert danish in page.text, danish
    text = reporting.get("/trials/T11/form", params={"from": "2019-01-01", "to": "2020-12-31"},
                         headers={"accept": "text/markdown"}).text
    assert text.startswith("# Evalueringsskema: Ledighedsydelse") and "## 10. Bemærkninger i øvrigt" in text
    assert "| 2020-06 | 6 | 5 |" in text
    assert "| 2018-06 |" in text  # the months before the trial, so that the trend before it shows
    download = reporting.get("/trials/T11/form", params={"from": "2019-01-01", "to": "2020-12-31", "format": "html"})
    assert download.headers["content-disposition"] == 'attachment; filename="evalueringsskema-T11.html"'
    assert reporting.get("/trials/T11/form", params={"format": "pdf"}).status_code == 422


def test_actions_only_a_trial_permits_are_counted_for_it(services):
    case, reporting = services
    documents = []
    for i in range(5):  # IGU for citizens over 40, in Jammerbugt under T15
        documents += [opened(f"igu-{i}", municipality="849", date="2019-01-01", cpr=f"0101{65 + i:02d}-{2000 + i}"),
                      event("offer.started", f"igu-{i}", offer="igu", date="2019-03-01")]
    assert case.post("/events", json=documents, headers=BATCH).status_code == 201
    assert case.get("/cases/igu-0").json()["events"][1]["permittedby"] == "T15"

    def permitted():
        rows = reporting.get("/trials/T15/evaluation", params={"from": "2019-01-01", "to": "2019-12-31"}).json()["rows"]
        return next(r for r in rows if r["metric"] == "permitted_actions" and r["municipality"] is None
                    and (r["group"], r["period"]) == ("trial", "trial"))

    deadline = time.monotonic() + 60
    while (row := permitted())["value"] == 0:  # a published 0 until the cases are derived
        assert time.monotonic() < deadline, "the reporting service did not catch up"
        time.sleep(0.2)
    assert (row["group"], row["value"], row["n"]) == ("trial", 5, 5)


def test_invalid_comparisons_are_refused_and_a_contaminated_group_is_named(services):
    """Issue 15.5: never a silent wrong number."""
    case, reporting = services
    batch = ly_citizens("aal", "851", 5) + ly_citizens("vhi", "820", 5)  # Vesthimmerland runs T10, T16, ...
    assert case.post("/events", json=batch, headers=BATCH).status_code == 201
    period = {"from": "2019-01-01", "to": "2020-12-31"}
    deadline = time.monotonic() + 60
    while (answer := reporting.get("/trials/T11/evaluation", params={**period, "comparison": "820"})).status_code != 200 \
            or reporting.get("/status").json()["stale"]:
        assert answer.status_code in (200, 422, 503), answer.text  # 422: 820 has no citizens yet
        assert time.monotonic() < deadline, f"the reporting service did not catch up: {answer.text[:300]}"
        time.sleep(0.2)
    body = answer.json()
    assert body["groups"]["comparison"] == ["820"]
    assert any("820" in w and "T10" in w for w in body["warnings"])
    aalborg = next(r for r in body["rows"] if r["municipality"] == "851" and r["period"] == "trial")
    assert aalborg["other_trials_active"][:2] == ["T1", "T2"]  # context, not credited to T11
    default = reporting.get("/trials/T11/evaluation", params=period).json()
    assert default["groups"]["comparison"] == [] and "820" in default["comparison_basis"]["excluded"]
    assert default["warnings"]  # no comparison group: said, not a silent number
    assert all(r["value"] is None for r in default["rows"] if r["metric"] == "did_estimate")
    for params, field, reason in [
        ({"comparison": "851"}, "comparison", "the groups overlap"),
        ({"comparison": "101"}, "comparison", "no citizens"),
        ({"from": "2016-01-01", "to": "2019-12-31"}, "from", "overlap"),
        ({"from": "2019-01-01", "to": "2030-01-01"}, "to", "after 2022-12-31"),
    ]:
        refused = reporting.get("/trials/T11/evaluation", params={**period, **params})
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json", params
        assert any(e["field"] == field and reason in e["reason"] for e in refused.json()["errors"]), refused.text
        assert reporting.get("/trials/T11/series", params={**period, **params, "metric": "ly_spells_ended"}).status_code == 422


def test_bad_requests_are_problems(services):
    _, reporting = services
    assert reporting.get("/trials/T99/evaluation").status_code == 404
    for params in ({"from": "2020-01-01", "to": "2019-01-01"}, {"comparison": "999"}, {"from": "soon"}):
        answer = reporting.get("/trials/T11/evaluation", params=params)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", params
    # a parameter given twice, or a municipality named twice, is refused rather than half used
    for query, field in (("comparison=101&comparison=461", "query.comparison"), ("comparison=101,101", "comparison"),
                         ("from=2019-01-01&from=2019-02-01", "query.from")):
        answer = reporting.get(f"/trials/T11/evaluation?{query}")
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", query
        assert answer.json()["errors"][0]["field"] == field, answer.json()
    assert {t["id"] for t in reporting.get("/trials").json()} == {f"T{i}" for i in range(1, 25)}
    assert reporting.get("/trials/T11/series", params={"metric": "happiness"}).status_code == 422


def test_a_case_the_facts_fail_for_stops_no_other(tmp_path, serve):
    """Issue 13, embedded: the ledighedsydelse case fails under a catalog value the fold cannot
    use; the cases after it are counted, and operators see it in /status and /metrics."""
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    las = catalog_dir / "rules" / "LAS-74c.yaml"
    las.write_text(las.read_text().replace("{value: 12,", "{value: twelve,"))
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
            serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common, catalog_dir=catalog_dir)))) as reporting:
        batch = [opened("poison", municipality="751"), benefit_started("poison"),
                 opened("good", municipality="751", cpr="020290-1234"), benefit_started("good", benefit="dagpenge")]
        assert case.post("/events", json=batch, headers=BATCH).status_code == 201
        deadline = time.monotonic() + 30
        while (status := reporting.get("/status").json())["cases"] < 2:
            assert time.monotonic() < deadline, "the reporting service did not store both cases"
            time.sleep(0.1)
        assert status["failed"] == 1 and [f["case_id"] for f in status["failed_cases"]] == ["poison"]
        assert "frisag_projection_failed_cases 1.0" in reporting.get("/metrics").text.splitlines()
        assert reporting.get("/readyz").status_code == 200
        answer = reporting.get("/trials/T11/evaluation", params={"from": "2019-01-01", "to": "2019-12-31"})
        assert answer.status_code == 200
