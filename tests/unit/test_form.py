"""Issue 15: the evaluation form as an evaluator reads it, rendered from a small T11 population
(the reporting store in SQLite in memory): 6 long ledighedsydelse spells in Aalborg, 3 in
Thisted, 5 in Aarhus (the comparison group); half of each end with a job on 30 June 2020."""

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.reporting import evaluation, form
from services.reporting.evaluation import comparison_default, evaluate, periods_for, series
from services.reporting.facts import NONE, FactParts
from services.reporting.store import ReportingStore
from shared.stream import Delivery
from tests.events import benefit_ended, benefit_started, event, opened
from tests.unit.test_disclosure import reporting_app, store_of
from tests.unit.test_evaluation import CATALOG, TODAY, stream_events
from tests.unit.test_evaluation import stored as stored_histories

T11 = CATALOG.trials["T11"]


def ly_case(case_id: str, municipality: str, serial: int, ends_with_job: bool) -> list[dict]:
    documents = [opened(case_id, municipality=municipality, date="2017-01-01", cpr=f"0101{60 + serial % 40:02d}-{1000 + serial}"),
                 benefit_started(case_id, date="2017-01-01"),
                 event("conversation.held", case_id, kind="jobsamtale", date="2019-03-01")]
    if ends_with_job:
        documents.append(benefit_ended(case_id, date="2020-06-30", reason="job"))
    return documents


def stored(cases: list[list[dict]]) -> FactParts:
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, CATALOG, today=lambda: TODAY)
    events = [e for documents in cases for e in stream_events(documents)]
    store.store([Delivery(0, i, e) for i, e in enumerate(events)])
    store.refresh()
    return FactParts.load(engine)


def answer_of(facts: FactParts, comparison=("751",), lo=date(2019, 1, 1), hi=date(2020, 12, 31)) -> form.Answer:
    periods = periods_for(T11, lo, hi, TODAY)
    metric = T11.headline_metric
    months = [r for lo_, hi_ in form.chart_spans(T11, periods)
              for r in series(facts, CATALOG, T11, metric, lo_, hi_, list(comparison))]
    return form.Answer(T11, CATALOG, periods, list(comparison), {"chosen_by": "default"},
                       evaluate(facts, CATALOG, T11, periods, list(comparison)), months)


@pytest.fixture(scope="module")
def facts() -> FactParts:
    places = [("851", 6), ("787", 3), ("751", 5)]
    cases, serial = [], 0
    for municipality, count in places:
        for i in range(count):
            cases.append(ly_case(f"{municipality}-{i}", municipality, serial, i % 2 == 0))
            serial += 1
    return stored(cases)


@pytest.fixture(scope="module")
def answer(facts) -> form.Answer:
    return answer_of(facts)


def table(page: str) -> dict[str, list[str]]:
    """The results table of the Markdown form: label -> its four cells."""
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5:
            rows[cells[0]] = cells[1:]
    return rows


def test_a_count_of_nothing_prints_as_0_and_a_dash_only_where_there_is_no_data(answer):
    """Every re-assessment in the trial group was waived under the trial: the obligations
    required with the trial are 0, not "–"; the share met on time of no obligations is no data."""
    rows = table(form.markdown(answer))
    assert rows["Pligter med forsøget, LAS-74c"][1] == "0 (0 borgere)"
    assert rows["Pligter fritaget af forsøget, LAS-74c"][3] == "0 (0 borgere)"
    assert rows["Afsluttede ledighedsydelsesforløb"][0] == "0 (0 borgere)"  # none ended before the trial
    assert rows["Andel pligter overholdt rettidigt"][1] == "–"
    assert "– betyder ingen data" in form.markdown(answer)


def test_a_month_with_no_one_to_count_has_no_share(facts, answer):
    """Before 2017 no one in the population is on a benefit: the share exiting to a job is no
    data ("–"), not 0 %."""
    months = series(facts, CATALOG, T11, "exits_to_job_share", *answer.periods["baseline"], ["751"])
    december = {r.group: r for r in months if r.period == "2016-12"}
    assert (december["trial"].value, december["trial"].n, december["trial"].suppressed) == (None, 0, False)
    assert form.number(december["trial"].value, "andel") == "–"


def test_the_chart_has_a_scale_a_time_axis_and_the_trials_start(answer):
    """The y-axis is labelled with ascending values from 0 (never 0 at both ends); the months run
    without a jump from the start of the baseline to the end of the period evaluated (the trial
    started 1 July 2018, the period evaluated 1 January 2019: the months between are there); the
    trial's start is marked at July 2018; the legend does not overlap the axis title."""
    svg = re.search(r"<svg.*</svg>", form.html_page(answer), re.S).group(0)
    y_labels = re.findall(r'<text class="y"[^>]*>([^<]*)</text>', svg)
    values = [float(v.replace(".", "").replace(",", ".").replace("−", "-")) for v in y_labels]
    assert len(values) >= 3 and values[0] == 0 and values == sorted(set(values)), y_labels
    months = re.findall(r'<text class="x" x="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    assert months[0][1] == "jun. 2016"
    positions = dict((m, float(x)) for x, m in months)
    step = positions["dec. 2016"] - positions["jun. 2016"]
    assert positions["dec. 2018"] - positions["jun. 2018"] == pytest.approx(step, abs=0.2)  # no jump over the run-in
    start = re.search(r'<line class="start" x1="([\d.]+)"', svg).group(1)
    assert float(start) == pytest.approx(positions["jun. 2018"] + step / 6, abs=0.2)  # July 2018
    legend_y = min(float(y) for y in re.findall(r'<text class="legend" x="[\d.]+" y="([\d.]+)"', svg))
    title_y = float(re.search(r'<text class="xtitle" x="[\d.]+" y="([\d.]+)"', svg).group(1))
    assert legend_y > title_y + 8


def test_the_difference_in_differences_in_words_says_what_each_group_did(answer):
    """The share exiting to a job rose from 0 % to 55.6 % in the trial group (5 of 9) and to
    60 % in the comparison group (3 of 5): a difference in differences of -4.4 points. The words
    must not say the share fell in the trial group."""
    sentence = next(s for s in form.did_sentences(answer.rows) if s.startswith("Andel afgået til job:"))
    assert "faldt" not in sentence, sentence
    assert "steg den 55,6 procentpoint i forsøgskommunerne og 60 procentpoint i sammenligningsgruppen" in sentence, sentence
    assert "4,4 procentpoint mindre i forsøgskommunerne" in sentence, sentence
    assert re.search(r"95 %-konfidensinterval fra −[\d,]+ til [\d,]+ procentpoint", sentence), sentence


def test_other_trials_active_are_noted_on_each_row(answer):
    """Issue 15.3: the other trials active at the same time are context, on each row: those in
    its municipality (a group total: in any of the group's) during its period. In Aalborg T10
    starts with T11 on 1 July 2018, so it is beside the trial period's rows, not the baseline's."""
    rows = {(r.metric, r.group, r.period, r.municipality): r for r in answer.rows}
    aalborg = rows[("ly_over_18m_at_start", "trial", "trial", "851")].other_trials_active
    assert {"T1", "T10", "T8", "T9"} <= set(aalborg) and "T11" not in aalborg and "T6" not in aalborg
    before = rows[("exits_to_job_share", "trial", "baseline", "851")].other_trials_active
    assert "T1" in before and "T10" not in before
    group = rows[("ly_over_18m_at_start", "trial", "trial", None)].other_trials_active
    assert set(aalborg) | {"T6", "T7"} <= set(group)  # T6 and T7 run in Jammerbugt, Thisted or Rebild
    assert rows[("ly_over_18m_at_start", "comparison", "trial", "751")].other_trials_active == ("T24",)
    assert all(isinstance(r.as_json()["other_trials_active"], list) for r in answer.rows)
    # a difference in differences spans both groups and both periods: every trial active in any
    # of their municipalities from the baseline's first day to the period's last
    first, last = min(lo for lo, _ in answer.periods.values()), max(hi for _, hi in answer.periods.values())
    places = {*T11.municipalities, "751"}
    everywhere = {t.id for t in CATALOG.trials.values() if t.id != "T11" and places & set(t.municipalities)
                  and t.period.start <= last and (t.period.end is None or t.period.end >= first)}
    did = [r for r in answer.rows if r.metric == "did_estimate"]
    assert did and all(set(r.other_trials_active) == everywhere for r in did)
    assert set().union(*(r.other_trials_active for r in answer.rows if r.metric != "did_estimate")) == everywhere
    assert "Andre forsøg i gang samtidig (kontekst: deres virkninger tilskrives ikke dette forsøg): " \
           "forsøgskommuner før forsøget: T1, T2," in form.markdown(answer)


def test_the_default_comparison_group_is_similar_in_size_where_possible():
    """Issue 15.4: of the municipalities no other trial contaminates, those similar in size to
    the trial's (citizens on a benefit during the periods compared: from half the smallest to
    twice the largest trial municipality); all of them where none is."""
    sizes = {"851": 6, "787": 3, "751": 5, "461": 30, "561": 1}
    cases, serial = [], 0
    for municipality, count in sizes.items():
        for i in range(count):
            cases.append(ly_case(f"{municipality}-{i}", municipality, serial, False))
            serial += 1
    facts = stored(cases)
    periods = periods_for(T11, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    chosen, excluded, size = comparison_default(facts, CATALOG, T11, periods)
    assert chosen == ["751"] and not set(excluded) & {"461", "561", "751"}
    # a size under 5 citizens is not published, nor the bound of the range computed from it
    assert size["citizens"] == {"851": 6, "787": None, "751": 5, "461": 30, "561": None}
    assert size["range"] == [None, 12] and size["left_out"] == ["461", "561"]
    only_large = stored([c for c in cases if not c[0]["subject"].startswith(("751", "561"))])
    chosen, _, size = comparison_default(only_large, CATALOG, T11, periods)
    assert chosen == ["461"] and size["left_out"] == []


def test_the_size_range_holds_its_bounds_and_counts_citizens_on_a_benefit_on_the_first_and_last_day():
    """Issue 16, at the boundaries: with trial municipalities of 6 and 2 citizens the range is 1
    to 12, both included; a municipality is sized by the citizens on a benefit on some day of
    the periods compared (a spell ending on the first day counts, one ending the day before
    does not; likewise starting on the last day or the day after); one with data but no one on
    a benefit then is not similar in size to any. A bound is published when the size it is
    computed from is."""
    periods = periods_for(T11, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    first, last = min(lo for lo, _ in periods.values()), max(hi for _, hi in periods.values())
    day = timedelta(days=1)
    throughout = (date(2016, 1, 1), None)

    def facts_of(spells: dict[str, list[tuple[date, date | None]]]) -> FactParts:
        cases = []
        for municipality, spans in spells.items():
            for start, end in spans:
                serial = len(cases)
                case_id = f"{municipality}-{serial}"
                documents = [opened(case_id, municipality=municipality, date="2016-01-01",
                                    cpr=f"0101{60 + serial % 40:02d}-{1000 + serial}"),
                             benefit_started(case_id, date=start.isoformat())]
                if end is not None:
                    documents.append(benefit_ended(case_id, date=end.isoformat(), reason="job"))
                cases.append(documents)
        return stored(cases)

    facts = facts_of({"851": [throughout] * 6, "787": [throughout] * 2,  # the trial's: 6 and 2
                      "461": [throughout] * 12, "751": [throughout] * 13, "561": [throughout],  # 12, 1 in; 13 out
                      "370": [(date(2016, 1, 1), first)] * 5, "360": [(date(2016, 1, 1), first - day)] * 5,
                      "329": [(last, None)] * 5, "330": [(last + day, None)] * 5})
    chosen, excluded, size = comparison_default(facts, CATALOG, T11, periods)
    assert not excluded
    assert size["citizens"] == {"851": 6, "787": None, "461": 12, "751": 13, "561": None, "370": 5, "329": 5}
    assert size["range"] == [None, 12]  # the low end, 1, is computed from a size under 5
    assert chosen == ["329", "370", "461", "561"] and size["left_out"] == ["330", "360", "751"]
    _, _, size = comparison_default(facts_of({"851": [throughout] * 6, "787": [throughout] * 5, "461": [throughout] * 9}),
                                    CATALOG, T11, periods)
    assert size["range"] == [2.5, 12]
    _, _, size = comparison_default(facts_of({"851": [throughout] * 4, "787": [throughout] * 2, "461": [throughout] * 6}),
                                    CATALOG, T11, periods)
    assert size["range"] == [None, None]


def test_ly_over_18_months_counts_a_spell_started_before_the_day_18_months_earlier_on_the_first_and_last_day():
    """Issue 16, at the boundaries. T11's period 2019-01-01 to 2020-12-31: on the first day
    over 18 months is a spell started before 2017-07-01 (Jammerbugt's, 30 June 2017), not one
    started on it (Aalborg's); a citizen who moved from Rebild to Thisted on the first day counts
    in Thisted. On the last day (cut-off 2019-06-30) a spell ending that day counts (Jammerbugt's),
    one ending the day before does not (Aarhus's, the comparison group). Jammerbugt's spells end
    with a job: a share of 1 there, of 0 in Aalborg and Thisted, 5 of 15 in the group; each
    held one talk in the period."""
    def case(case_id: str, municipality: str, serial: int, start: str, *more: dict) -> list[dict]:
        return [opened(case_id, municipality=municipality, date="2016-01-01", cpr=f"0101{60 + serial % 40:02d}-{3000 + serial}"),
                benefit_started(case_id, date=start), *more]

    cases = []
    for i in range(5):
        cases += [case(f"851-{i}", "851", i, "2017-07-01"),
                  case(f"849-{i}", "849", 10 + i, "2017-06-30", event("conversation.held", f"849-{i}", kind="jobsamtale",
                                                                       date="2019-03-01"),
                       benefit_ended(f"849-{i}", date="2020-12-31")),
                  case(f"840-{i}", "840", 20 + i, "2017-01-01", event("case.moved", f"840-{i}", date="2019-01-01", municipality="787")),
                  case(f"751-{i}", "751", 30 + i, "2017-01-01", benefit_ended(f"751-{i}", date="2020-12-30"))]
    rows = evaluate(stored(cases), CATALOG, T11, periods_for(T11, date(2019, 1, 1), date(2020, 12, 31), TODAY), ["751"])
    over = {(r.metric.removeprefix("ly_over_18m_"), r.group, r.municipality): (r.value, r.n)
            for r in rows if r.metric.startswith("ly_over_18m_") and r.period == "trial"}
    assert over == {("at_start", "trial", "849"): (5, 5), ("at_start", "trial", "787"): (5, 5),
                    ("at_start", "trial", None): (10, 10),
                    ("at_end", "trial", "851"): (5, 5), ("at_end", "trial", "849"): (5, 5),
                    ("at_end", "trial", "787"): (5, 5), ("at_end", "trial", None): (15, 15),
                    ("at_start", "comparison", "751"): (5, 5), ("at_start", "comparison", None): (5, 5),
                    ("at_end", "comparison", None): (0, 0)}
    assert all(type(r.value) is int for r in rows if r.metric.startswith("ly_over_18m_"))  # counts: whole numbers
    # the municipalities in the order of their kommunekoder (Thisted, 787, first; not as first met), then the total
    assert [r.municipality for r in rows if (r.metric, r.group, r.period) == ("ly_over_18m_at_end", "trial", "trial")] \
        == ["787", "849", "851", None]
    # each municipality's share of its citizens exiting to a job: Jammerbugt's five ended with one
    exits = {r.municipality: (r.value, r.n) for r in rows
             if (r.metric, r.group, r.period) == ("exits_to_job_share", "trial", "trial")}
    assert exits == {"787": (0.0, 5), "849": (1.0, 5), "851": (0.0, 5), None: (0.3333, 15)}
    # Jammerbugt: 5 talks in 5 x 731 days on benefit, 100 * 5 / (3,655 / (365.25 / 12)) per 100 months
    talks = {r.municipality: r.value for r in rows
             if (r.metric, r.group, r.period) == ("conversations_held_per_100_months", "trial", "trial")}
    assert talks["849"] == round(500 * 30.4375 / 3655, 4) and talks["851"] == 0.0
    # T11 permits nothing: no count of permitted actions, not even 0; hours freed are hours, 0.0 where none
    assert not [r for r in rows if r.metric == "permitted_actions"]
    none_freed = [r.value for r in rows if r.metric == "caseworker_hours_freed" and (r.group, r.period) != ("trial", "trial")]
    assert len(none_freed) == 3 and all(type(v) is float and v == 0 for v in none_freed)


def test_permitted_actions_count_the_events_the_trial_evaluated_permitted_in_the_period():
    """T7 permits psychologist treatment in Thisted (787) and Jammerbugt (849), T12 a wage subsidy
    in Jammerbugt. T7's permitted actions in 2019: the five treatments it permitted in Thisted
    that year, not the sixth's on 31 December 2018, nor the talks no trial permitted, nor T12's
    five in Jammerbugt. T15 (IGU in Jammerbugt) permitted none of them: 0 in each group, also
    with Thisted as its comparison group."""
    def case(case_id: str, municipality: str, serial: int, *later: tuple[dict, str | None]) -> list:
        documents = [(opened(case_id, municipality=municipality, date="2018-01-01",
                             cpr=f"0101{60 + serial % 40:02d}-{4000 + serial}"), None), *later]
        return [e._replace(permitted_by=by) for e, (_, by) in zip(stream_events([d for d, _ in documents]), documents)]

    def offer(case_id: str, day: str, kind: str, by: str) -> tuple[dict, str]:
        return event("offer.started", case_id, date=day, offer=kind), by

    histories = [case(f"787-{i}", "787", i, offer(f"787-{i}", "2019-03-01", "psykologbehandling", "T7"),
                      (event("conversation.held", f"787-{i}", kind="jobsamtale", date="2019-03-02"), None))
                 for i in range(5)]
    histories += [case("787-5", "787", 5, offer("787-5", "2018-12-31", "psykologbehandling", "T7"))]
    histories += [case(f"849-{i}", "849", 10 + i, offer(f"849-{i}", "2019-03-01", "loentilskud", "T12")) for i in range(5)]
    facts = stored_histories(histories)

    def permitted(trial: str, comparison: list[str]) -> dict:
        rows = evaluate(facts, CATALOG, CATALOG.trials[trial], periods_for(CATALOG.trials[trial], date(2019, 1, 1),
                                                                          date(2019, 12, 31), TODAY), comparison)
        return {(r.group, r.municipality): (r.value, r.n) for r in rows
                if r.metric == "permitted_actions" and r.period == "trial"}

    assert permitted("T7", ["751"]) == {("trial", "787"): (5, 5), ("trial", None): (5, 5), ("comparison", None): (0, 0)}
    assert permitted("T15", ["787"]) == {("trial", None): (0, 0), ("comparison", None): (0, 0)}


def test_a_comparison_group_the_user_chose_is_said_so_with_its_warnings(facts, issuer):
    """Issue 15.4: asked with `?comparison=820`, the form says the group was chosen by the user,
    not by the default rule, and warns in Danish that Vesthimmerland runs trials that change
    the same rules or obligations (T10 waives LÆ265 there from 1 July 2018); by default it says
    the rule chose it, and warns of nothing."""
    cases = [ly_case(f"{m}-{i}", m, serial, i % 2 == 0)
             for serial, (m, i) in enumerate([("851", i) for i in range(6)] + [("751", i) for i in range(5)]
                                             + [("820", i) for i in range(5)])]
    store = store_of([stream_events(c) for c in cases])
    period = {"from": "2019-01-01", "to": "2020-12-31", "format": "markdown"}
    with reporting_app(store, issuer.everything()) as app:
        chosen = app.get("/trials/T11/form", params={**period, "comparison": "820"})
        default = app.get("/trials/T11/form", params=period)
        asked = {"from": period["from"], "to": period["to"], "comparison": "820"}  # not the form's `format`
        answer = app.get("/trials/T11/evaluation", params=asked).json()
    assert chosen.status_code == default.status_code == 200
    assert "Sammenligningsgruppe: Vesthimmerland (820). Valgt af brugeren, ikke efter standardreglen (kommuner med " \
           "data uden for forsøget" in chosen.text
    warned = [line for line in chosen.text.splitlines() if line.startswith("Advarsel:")]
    assert len(warned) == len(answer["warnings"]) == 1
    assert re.match(r"Advarsel: Vesthimmerland \(820\) har T\d+(, T\d+)* i gang i de sammenlignede perioder", warned[0])
    assert "T10" in warned[0] and "T11" not in warned[0].split("i gang")[0]
    assert "Sammenligningsgruppe: Aarhus (751). Valgt efter standardreglen: kommuner med data" in default.text
    assert "Valgt af brugeren" not in default.text and "Advarsel" not in default.text


def test_each_citizens_contribution_to_a_group_total_adds_up_to_it(facts):
    """The difference-in-differences' interval resamples the citizens of each group total by
    their own (numerator, denominator): for each of its metrics these add up to the total's (a
    citizen share: hits and citizens), one pair per citizen counted."""
    (facts,) = facts.parts  # a few cases: one part
    lo, hi = periods_for(T11, date(2019, 1, 1), date(2020, 12, 31), TODAY)["trial"]
    asked = evaluation._members(facts, [*T11.municipalities, "751"])
    contributions = evaluation._contributions(facts, CATALOG, T11, lo, hi, evaluation.DID_METRICS)
    grouped = evaluation._grouped(evaluation._tallies(contributions, asked, facts), evaluation._members(facts, T11.municipalities))
    # every obligation here is waived (none done, on time or not); no one is on ressourceforløb
    assert set(evaluation.DID_METRICS) - set(grouped) == {"obligations_on_time_share", "exits_to_job_share_ressourceforloeb"}
    for metric in set(evaluation.DID_METRICS) & set(grouped):
        total = grouped[metric].totals[NONE]
        numerator, denominator = total.spread.pairs.sum(axis=0)
        expected = (total.hits, total.n) if total.kind == "citizen_share" else (total.numerator, total.denominator)
        assert len(total.spread.pairs) == total.spread.n == total.n, metric
        assert (numerator, denominator) == pytest.approx(expected) == tuple(total.spread.sums), metric
        assert denominator > 0, metric


def test_ly_over_18_months_counts_a_citizen_once_in_each_municipality_with_more_municipalities_than_citizens():
    """A citizen may be on ledighedsydelse in several municipalities at once: over 18 months
    counts each citizen once in each. 5 citizens on it since 2016 in both Aalborg (T11) and
    Odense (461, compared) are 5 in each on the first day, also where one of them has cases in 4
    more municipalities (on it from 1 December 2018: not over 18 months), so that the store has
    more municipalities (6) than citizens (5)."""
    cases = []
    for i in range(5):
        cpr = f"0101{60 + i:02d}-{5000 + i}"
        for m in ["851", "787", "849", "840", "751", "461"] if i == 0 else ["851", "461"]:
            cases.append([opened(f"{m}-{i}", municipality=m, date="2016-01-01", cpr=cpr),
                          benefit_started(f"{m}-{i}", date="2016-01-01" if m in ("851", "461") else "2018-12-01")])
    facts = stored(cases)
    assert (facts.parts[0].places, facts.parts[0].citizens) == (6, 5)
    rows = evaluate(facts, CATALOG, T11, periods_for(T11, date(2019, 1, 1), date(2020, 12, 31), TODAY), ["461"])
    assert {(r.group, r.municipality): (r.value, r.n) for r in rows
            if (r.metric, r.period) == ("ly_over_18m_at_start", "trial")} == \
        {("trial", "851"): (5, 5), ("trial", None): (5, 5), ("comparison", "461"): (5, 5), ("comparison", None): (5, 5)}


def test_hours_freed_are_given_to_two_decimals_and_a_count_of_obligations_as_a_whole_number():
    # 7 waived LÆ285s of 20 minutes: 140 minutes, 2 1/3 hours
    hours = evaluation.Cell("count", 7 * 20 / 60, 0.0, 7).value()
    assert (hours, type(hours)) == (2.33, float)
    count = evaluation.Cell("count", 7, 0.0, 7).value()
    assert (count, type(count)) == (7, int)


def test_the_other_trials_in_aalborg_are_those_running_at_some_time_in_the_period_in_the_order_of_their_numbers():
    """From the catalog's files: in Aalborg (851), besides T1 (which permits offer types,
    LAB-tilbudstyper), T2, T5, T8 and T9 run from 2017 or 2018-01-01, T10, T11, T14 and T21
    from 2018-07-01; T11 ends on 2022-12-31. Of them, T21 only permits another rule
    (REHAB-sammensaetning): the one that does not contaminate; T5 permits the same rule."""
    t1 = CATALOG.trials["T1"]

    def others(first: date, last: date, contaminating: bool = False) -> list[str]:
        return evaluation.other_trials(CATALOG, t1, "851", first, last, contaminating)

    every = ["T2", "T5", "T8", "T9", "T10", "T11", "T14", "T21"]
    assert others(date(2019, 1, 1), date(2019, 12, 31)) == every
    assert others(date(2019, 1, 1), date(2019, 12, 31), contaminating=True) == ["T2", "T5", "T8", "T9", "T10", "T11", "T14"]
    # on the boundaries: a trial counts from its first day to its last
    assert others(date(2018, 1, 1), date(2018, 6, 30)) == ["T2", "T5", "T8", "T9"]
    assert others(date(2018, 1, 1), date(2018, 7, 1)) == every
    assert others(date(2022, 12, 31), date(2023, 6, 1)) == every
    assert others(date(2023, 1, 1), date(2023, 6, 1)) == ["T2", "T5", "T8", "T9", "T10", "T14", "T21"]
