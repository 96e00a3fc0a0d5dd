"""Issue 15.1-2: over generated populations, nothing suppressed, and nothing of fewer than 5
citizens, can be computed from the other numbers one answer publishes, in each view of it: the
evaluation as JSON and as CSV (`;`, decimal comma), the monthly series as JSON and as CSV, and
the form as Markdown and as HTML (the numbers read back out of the rendered text). The views
come from the app itself, in process, over the reporting store of the population; the truth
each check needs (how many citizens a hidden cell has) from the same evaluation with nothing
suppressed."""

import csv
import html
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from unittest import mock

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from services.reporting import evaluation, form
from services.reporting.api import CSV_COLUMNS, GROUPS_DA, PERIODS_DA, create_app
from services.reporting.bootstrap import ReportingService
from services.reporting.evaluation import Row, evaluate, periods_for, series
from services.reporting.facts import FactParts
from services.reporting.metrics import CATALOG as METRICS
from services.reporting.settings import ReportingSettings
from services.reporting.store import ReportingStore
from shared.audit import AuditLog
from shared.auth import authenticator
from shared.catalog import Catalog, add_duration
from shared.population import Population
from shared.stream import Delivery
from tests.unit.test_evaluation import TODAY, stream_events

CATALOG = Catalog.load()
THRESHOLD = 5
# numbers that add up over municipalities (and over months): a total is the sum of its cells
ADDITIVE = {"obligations_required_ordinary", "obligations_required", "obligations_waived", "caseworker_hours_freed",
            "ly_spells_ended", "permitted_actions"}
PERIOD = {"from": "2019-01-01", "to": "2020-12-31"}


def store_of(histories, catalog: Catalog = CATALOG) -> ReportingStore:
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
    store = ReportingStore(engine, catalog, today=lambda: TODAY)
    deliveries = [Delivery(0, i, e) for i, e in enumerate(e for h in histories for e in h)]
    for start in range(0, len(deliveries), 5000):
        store.store(deliveries[start:start + 5000])
    store.refresh()
    return store


@contextmanager
def reporting_app(store: ReportingStore, token: str) -> Iterator[TestClient]:
    """The reporting app in process over the store, asked as an evaluator with every role."""
    settings = ReportingSettings(database_url=None, kafka_bootstrap_servers=None, run_consumer=False)
    service = ReportingService(store, None, authenticator(settings), AuditLog(store.engine, "reporting"))
    with TestClient(create_app(lambda: service, settings), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def unsuppressed(compute):
    with mock.patch.object(evaluation, "SUPPRESS_BELOW", 0):
        return compute()


def key(r: Row) -> tuple:
    return r.metric, r.group, r.period, r.rule or r.of, r.municipality


# the views read back


def from_json(rows: list[dict]) -> list[Row]:
    return [Row(**{**r, "ci95": tuple(r["ci95"]) if r.get("ci95") else None,
                   "other_trials_active": tuple(r["other_trials_active"]),
                   "shared_with": tuple(r["shared_with"].items())}) for r in rows]


def danish_number(text: str) -> float:
    return float(text.replace(".", "").replace(",", ".").replace("−", "-"))


def from_csv(text: str) -> list[Row]:
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert lines[0] == list(CSV_COLUMNS.values())
    column = {name: lines[0].index(header) for name, header in CSV_COLUMNS.items()}
    groups, periods = ({da: en for en, da in names.items()} for names in (GROUPS_DA, PERIODS_DA))
    rows = []
    for line in lines[1:]:
        def get(name):
            return line[column[name]] or None
        low, high = get("ci95_low"), get("ci95_high")
        rows.append(Row(get("metric"), groups[get("group")], periods.get(get("period"), get("period")), get("municipality"),
                        danish_number(get("value")) if get("value") else None, int(get("n")) if get("n") else None,
                        get("suppressed") == "ja", get("rule"), get("of"),
                        (danish_number(low), danish_number(high)) if low else None))
    return rows


LABELS = {m.label_da: m.id for m in METRICS.values()}
CELL = re.compile(r"^(?P<value>[−\d.,]+|–)(?P<percent> %)? \((?P<n>[\d.]+) borgere\)$")


def form_cell(metric: str, rule: str | None, group: str, period: str, text: str) -> Row:
    """A cell of the form's table: "undertrykt", or a value (in percent for a share) and its citizens."""
    if text == form.SUPPRESSED:
        return Row(metric, group, period, None, None, None, True, rule)
    found = CELL.match(text)
    assert found, text
    value = None if found["value"] == "–" else danish_number(found["value"]) / (100 if found["percent"] else 1)
    return Row(metric, group, period, None, value, int(danish_number(found["n"])), False, rule)


def form_table(lines: list[tuple[str, list[str]]]) -> list[Row]:
    """The results table, (label, its four cells) per line, as rows: a label is the metric's, with
    ", rule" where it is given by rule."""
    rows = []
    for name, cells in lines:
        metric, rule = LABELS.get(name), None
        if metric is None:
            name, rule = name.rsplit(", ", 1)
            metric = LABELS[name]
        combos = [(g, p) for g in form.GROUPS for p in form.PERIODS]
        # "–" alone: no such row in the answer
        rows += [form_cell(metric, rule, g, p, text) for (g, p), text in zip(combos, cells, strict=True) if text != "–"]
    return rows


def from_markdown(page: str, metric: str) -> tuple[list[Row], list[Row]]:
    """The Markdown form's results table and its months of the headline metric."""
    table, months = [], []
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5 and cells[0] != "Mål":
            table.append((cells[0], cells[1:]))
        elif line.startswith("| ") and len(cells) == 3 and re.fullmatch(r"\d{4}-\d{2}", cells[0]):
            for group, text in zip(form.GROUPS, cells[1:]):
                suppressed = text == form.SUPPRESSED
                value = None if suppressed or text == "–" else (
                    danish_number(text.removesuffix(" %")) / (100 if text.endswith(" %") else 1))
                months.append(Row(metric, group, cells[0], None, value, None, suppressed))
    return form_table(table), months


def from_html(page: str) -> list[Row]:
    """The HTML form's results table."""
    lines = [(html.unescape(name), [html.unescape(c) for c in re.findall(r"<td class=n>([^<\n]*)", cells)])
             for name, cells in re.findall(r"<tr><td>(.*?)<div class=def>.*?</div>((?:<td class=n>[^<\n]*)+)", page)]
    return form_table(lines)


# what one answer gives away


def leaks(rows: list[Row], truth: list[Row], months: list[tuple[str | None, list[Row]]], true_months: list[Row]
          ) -> list[str]:
    """What an evaluator could compute from the published rows of one answer; `months` are the
    months shown with it, each with the period whose total they add up to (None: none shown)."""
    true = {key(r): r for r in truth + true_months}
    found = []
    for r in rows + [m for _, ms in months for m in ms]:
        if r.suppressed and (r.value is not None or r.n is not None):
            found.append(f"{key(r)}: suppressed, yet shown")
        elif not r.suppressed and r.n is not None and 0 < r.n < THRESHOLD:
            found.append(f"{key(r)}: published over {r.n} citizens")
        elif not r.suppressed and r.n is None and (t := true.get(key(r))) is not None and 0 < t.n < THRESHOLD:
            found.append(f"{key(r)}: a value of {t.n} citizens published")
    families: dict[tuple, dict] = defaultdict(lambda: {"cells": [], "total": None})
    for r in rows:
        if r.metric != "did_estimate":
            family = families[(r.metric, r.group, r.period, r.rule)]
            if r.municipality is None:
                family["total"] = r
            else:
                family["cells"].append(r)
    for period, shown in months:  # a group's months add up to its total of the period, if published beside
        for r in shown:
            if r.metric not in ADDITIVE:  # a count on one day (ly_over_18m_*), a mean, a share: months do not add up
                continue
            family = families[("months", r.metric, r.group, period)]
            family["cells"].append(r)
            family["total"] = next((t for t in rows if t.metric == r.metric and t.group == r.group and t.period == period
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
    # ordinary = required + waived, hours = waived's minutes: counts linked across metrics
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
    # a difference in differences and three of its four totals give the fourth
    totals = {(r.metric, r.group, r.period): r for r in rows if r.municipality is None and r.rule is None}
    for r in rows:
        if r.metric == "did_estimate" and not r.suppressed:
            cells = [totals.get((r.of, g, p)) for g, p in evaluation.DID_CELLS]
            if any(c is None or c.suppressed for c in cells):
                found.append(f"did_estimate of {r.of}: published beside a hidden total")
    # a count of shared obligations, only beside the row it is part of
    for r in rows:
        if any(k is not None for _, k in r.shared_with) and (r.suppressed or r.municipality is not None):
            found.append(f"{key(r)}: shared obligations counted on a hidden row or a municipality's cell")
    return found


def same_cells(view: list[Row], answer: list[Row], name: str, tolerance: float = 0.0) -> None:
    """The view shows what the JSON answer does: the same cells hidden, the same values."""
    published = {key(r): r for r in answer}
    assert view, f"{name}: nothing read"
    for r in view:
        a = published[key(r)]
        assert r.suppressed == a.suppressed and r.n == a.n, (name, key(r))
        if r.value is None or a.value is None:
            assert r.value == a.value, (name, key(r))
        else:
            assert abs(r.value - a.value) <= tolerance * (0.01 if METRICS[r.metric].unit == "andel" else 1) + 1e-9, \
                (name, key(r), r.value, a.value)


# no shrinking: an example takes seconds, and a failure names its population already
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(seed=st.integers(0, 10**6), cases=st.integers(30, 300), trial=st.sampled_from(["T11", "T6", "T10", "T2"]),
       metric=st.sampled_from(["ly_spells_ended", "obligations_waived", "caseworker_hours_freed", "ly_over_18m_at_end",
                               "obligations_required"]))
def test_no_suppressed_value_can_be_derived_from_one_answer(issuer, seed, cases, trial, metric):
    histories = [stream_events(docs) for docs in Population(seed=seed, start=date(2016, 1, 1)).cases(cases)]
    store = store_of(histories)
    facts, t = FactParts.load(store.engine), CATALOG.trials[trial]
    with reporting_app(store, issuer.everything()) as app:
        answer = app.get(f"/trials/{trial}/evaluation", params=PERIOD).json()
        csv_answer = app.get(f"/trials/{trial}/evaluation", params=PERIOD, headers={"Accept": "text/csv"}).text
        shown = app.get(f"/trials/{trial}/series", params={**PERIOD, "metric": metric}).json()
        csv_shown = app.get(f"/trials/{trial}/series", params={**PERIOD, "metric": metric},
                            headers={"Accept": "text/csv"}).text
        markdown = app.get(f"/trials/{trial}/form", params={**PERIOD, "format": "markdown"}).text
        page = app.get(f"/trials/{trial}/form", params=PERIOD).text
    comparison = answer["groups"]["comparison"]
    periods = periods_for(t, date(2019, 1, 1), date(2020, 12, 31), TODAY)
    truth = unsuppressed(lambda: evaluate(facts, CATALOG, t, periods, comparison))
    true_months = unsuppressed(lambda: series(facts, CATALOG, t, metric, *periods["trial"], comparison))
    spans = form.chart_spans(t, periods)
    true_chart = unsuppressed(lambda: [r for lo, hi in spans for r in series(facts, CATALOG, t, t.headline_metric, lo, hi,
                                                                             comparison)])
    rows, months = from_json(answer["rows"]), from_json(shown["rows"])

    found = {"JSON": leaks(rows, truth, [("trial", months)], true_months)}
    csv_rows, csv_months = from_csv(csv_answer), from_csv(csv_shown)
    same_cells(csv_rows, rows, "CSV")
    same_cells(csv_months, months, "series CSV")
    found["CSV"] = leaks(csv_rows, truth, [("trial", csv_months)], true_months)

    # the form: the groups' totals, and the headline metric's months from the start of the baseline
    chart = {r.period: r for r in true_chart}
    span_of = {}  # the period a month is part of (a baseline may begin within one), if any
    for month in chart:
        first = date.fromisoformat(month + "-01")
        last = add_duration(first, "1m") - timedelta(days=1)
        span_of[month] = next((name for name, (lo, hi) in periods.items() if lo <= last and first <= hi), None)
    for name, (table, shown_months) in (("Markdown", from_markdown(markdown, t.headline_metric)),
                                        ("HTML", (from_html(page), []))):
        same_cells(table, rows, name, tolerance=0.051)
        by_span = defaultdict(list)
        for r in shown_months:
            by_span[span_of[r.period]].append(r)
        found[name] = leaks(table, truth, list(by_span.items()), true_chart)
    assert {view: found for view, found in found.items() if found} == {}
    for text in (markdown, page):
        assert not re.search(r"\((?:[1-4]) borgere\)", text)
        did = {r.of: r for r in rows if r.metric == "did_estimate"}
        for metric_id, r in did.items():
            if r.suppressed and metric_id in METRICS:
                assert f"{METRICS[metric_id].label_da}: kan ikke beregnes" in html.unescape(text)


def test_a_hidden_total_whose_cells_are_all_shown_has_the_smallest_cell_hidden_too():
    """Secondary suppression at its edge: a group's total hidden (as when a count linked to it
    is) while each of its municipalities is shown would be their sum; the smallest cell is hidden
    too, and then the two hidden cannot be told apart."""
    total = Row("obligations_waived", "trial", "trial", None, 22, 22, True, "LAS-74c")
    cells = [Row("obligations_waived", "trial", "trial", "851", 12, 12, False, "LAS-74c"),
             Row("obligations_waived", "trial", "trial", "787", 10, 10, False, "LAS-74c")]
    out = evaluation._protected([total, *cells])
    assert [(r.municipality, r.value, r.n, r.suppressed) for r in out] == \
        [(None, None, None, True), ("851", 12, 12, False), ("787", None, None, True)]


def waived(municipality: str | None, n: int, value: float | None = ...) -> Row:
    """A cell of `n` citizens; its value is `n` unless given."""
    return Row("obligations_waived", "trial", "trial", municipality, n if value is ... else value, n, 0 < n < 5, "LAS-74c")


def test_hidden_cells_of_five_citizens_together_are_enough_and_of_four_are_not():
    """The boundary of "the hidden cells together are of 5 citizens or more": 2 + 3 hidden
    beside a published total stay the only ones hidden; 1 + 3 are 4 citizens, so the next
    smallest cell (10) is hidden too."""
    five = evaluation._protected([waived(None, 27), waived("851", 2), waived("787", 3), waived("849", 10),
                                  waived("840", 12)])
    assert [r.municipality for r in five if r.suppressed] == ["851", "787"]
    four = evaluation._protected([waived(None, 26), waived("851", 1), waived("787", 3), waived("849", 10),
                                  waived("840", 12)])
    assert [r.municipality for r in four if r.suppressed] == ["851", "787", "849"]


def test_of_two_cells_of_as_many_citizens_the_one_of_the_smaller_value_is_hidden_next():
    """Secondary suppression picks the smallest cell by citizens, then by value (a missing value
    counting as 0), whichever comes first in the rows."""
    def next_hidden(a: Row, b: Row) -> str:
        out = evaluation._protected([waived(None, 23), waived("851", 3), a, b])
        return [r.municipality for r in out if r.suppressed and r.municipality != "851"][0]

    assert next_hidden(waived("787", 10, 3.0), waived("849", 10, 1.0)) == "849"
    assert next_hidden(waived("787", 10, 0.5), waived("849", 10, None)) == "849"
    assert next_hidden(waived("787", 10, 1.0), waived("849", 10, 3.0)) == "787"


def test_the_readme_table_is_the_metrics_catalog():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for m in METRICS.values():
        assert f"| `{m.id}` | {m.label_da} | {m.unit} | {m.definition_en} |" in readme, m.id
    assert set(METRICS) >= set(evaluation.METRICS) | {"did_estimate"}


def test_a_total_of_one_cell_hidden_by_a_linked_count_is_hidden_too():
    """Secondary suppression when no cell is left to hide: LAS-74c required in Aalborg only (12
    citizens), hidden with its waived count there (3 citizens); the group's required total is
    then that cell's number: hidden too, and with it the waived total it is linked to (the
    waived in Aalborg and Thisted, 3 + 4, already hide 7 citizens together beside Jammerbugt's 10)."""
    def row(metric: str, municipality: str | None, n: int) -> Row:
        return Row(metric, "trial", "trial", municipality, n, n, 0 < n < 5, "LAS-74c")

    out = evaluation._protected([row("obligations_required", None, 12), row("obligations_required", "851", 12),
                                 row("obligations_waived", None, 17), row("obligations_waived", "851", 3),
                                 row("obligations_waived", "787", 4), row("obligations_waived", "849", 10)])
    assert [(r.metric, r.municipality) for r in out if not r.suppressed] == [("obligations_waived", "849")]
    assert all((r.value, r.n) == (None, None) for r in out if r.suppressed)
