"""HTTP entrypoint of the reporting service: the trials and their evaluation numbers."""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.reporting import form
from services.reporting.bootstrap import ReportingService, bootstrap
from services.reporting.evaluation import (
    COMPARISON_RULE,
    METRICS,
    PeriodError,
    Row,
    comparison_default,
    evaluate,
    other_trials,
    periods_for,
    series,
)
from services.reporting.metrics import CATALOG as METRIC_CATALOG
from services.reporting.metrics import label
from services.reporting.replies import Evaluation, Series
from services.reporting.settings import ReportingSettings
from services.reporting.store import HORIZON
from services.reporting.whatif import (
    MAX_MONTHS,
    WAITING,
    Busy,
    Run,
    Scenario,
    ScenarioError,
    counted,
    months_between,
    rules_changed,
)
from shared import openapi
from shared.app import service_app
from shared.auth import ADMIN, EVALUATOR, ROLES, Principal, requires
from shared.catalog import Catalog, Trial
from shared.dates import RANGE, QueryDate
from shared.events import JSON_TYPE, media_type
from shared.hardening import parse_json
from shared.municipalities import municipalities
from shared.problems import FieldError, Problem

From = Annotated[QueryDate | None, Query(alias="from", description=f"default: the trial's start; {RANGE}")]
To = Annotated[QueryDate | None, Query(description=f"default: the trial's end, or today; {RANGE}")]


class WhatIfRequest(BaseModel):
    """A scenario, and the months to count (by default those its changes apply in, up to as far
    as the fold looks ahead)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    scenario: Scenario
    from_: QueryDate | None = Field(None, alias="from")
    to: QueryDate | None = None


async def _what_if_request(request: Request) -> WhatIfRequest:
    """The body, parsed as strictly as the case service parses events, then validated."""
    if media_type(request.headers.get("content-type", "")) != JSON_TYPE:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      errors=[FieldError("Content-Type", f"send {JSON_TYPE} (a charset only utf-8)")])
    document = parse_json(await request.body())
    try:
        return WhatIfRequest.model_validate(document)
    except ValidationError as exc:  # named as FastAPI names a body's fields
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


Comparison = Annotated[str | None, Query(description="kommunekoder, comma-separated; default: " + COMPARISON_RULE)]
# Danish Excel: `;` between fields, a decimal comma, a BOM so that it reads UTF-8; headers in Danish
CSV_COLUMNS = {"metric": "mål", "label": "betegnelse", "rule": "regel", "of": "forskel i", "group": "gruppe",
               "period": "periode", "municipality": "kommune", "value": "værdi", "n": "borgere",
               "suppressed": "undertrykt", "ci95_low": "95 %-interval, nedre", "ci95_high": "95 %-interval, øvre",
               "other_trials_active": "andre forsøg i gang", "shared_with": "delt med"}
GROUPS_DA = {"trial": "forsøgskommuner", "comparison": "sammenligningsgruppe"}
PERIODS_DA = {"baseline": "før forsøget", "trial": "under forsøget"}


def create_app(service_factory: Callable[[], ReportingService] | None = None, settings: ReportingSettings | None = None) -> FastAPI:
    """The app over the service `service_factory` makes (default: from `settings`, which default
    to the environment's)."""
    settings = settings or ReportingSettings()
    app = service_app(
        "Frisag reporting service",
        "The trials' evaluation numbers, computed from the same event stream: trial municipalities "
        "against a comparison group, baseline against trial period. Counts under 5 citizens are suppressed.",
        service_factory or (lambda: bootstrap(settings)),
        settings,
        _what_if_schemas(),
    )

    evaluator = [Depends(requires(EVALUATOR))]

    @app.get("/trials", dependencies=evaluator)
    def trials(request: Request) -> list[dict[str, Any]]:
        """The trial catalog."""
        return [t.model_dump(mode="json") for t in request.app.state.service.projection.catalog.trials.values()]

    @app.get("/trials/{trial}/evaluation", dependencies=evaluator,
             responses={200: {"model": Evaluation, "content": {"text/csv": {}}}, **openapi.problems(404)})
    def evaluation(trial: str, request: Request, from_: From = None, to: To = None, comparison: Comparison = None) -> Any:
        """Every number as a row `{metric, rule, group, period, municipality, value, n, suppressed}`
        (and `did_estimate` rows with `of` and `ci95`); CSV with `Accept: text/csv`."""
        asked = _asked(request, trial, from_, to, comparison)
        rows = asked.evaluation()
        if "text/csv" in request.headers.get("accept", ""):
            return _csv(rows, f"evaluering-{asked.trial.id}-{asked.periods['trial'][0]}-{asked.periods['trial'][1]}.csv")
        return JSONResponse({**asked.describe(), "rows": [r.as_json() for r in rows]})  # plain values: no need for jsonable_encoder

    @app.get("/trials/{trial}/series", dependencies=evaluator,
             responses={200: {"model": Series, "content": {"text/csv": {}}}, **openapi.problems(404)})
    def monthly(trial: str, request: Request, metric: Annotated[str, Query()], from_: From = None, to: To = None,
                comparison: Comparison = None,
                span: Annotated[Literal["trial", "baseline"], Query(
                    description="the months of the period evaluated (default) or of its baseline, for a chart "
                                "from before the trial; each protected against its own total")] = "trial") -> Any:
        """One metric month by month for the trial group and the comparison group, for charts;
        CSV with `Accept: text/csv`."""
        if metric not in METRICS:
            raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError("metric", f"one of {list(METRICS)}")])
        asked = _asked(request, trial, from_, to, comparison)
        lo, hi = asked.periods[span]
        rows = asked.series(metric, lo, hi)
        if "text/csv" in request.headers.get("accept", ""):
            return _csv(rows, f"maaned-{asked.trial.id}-{metric}{'-foer' if span == 'baseline' else ''}.csv")
        return {**asked.describe(), "metric": metric, "span": {"from": lo.isoformat(), "to": hi.isoformat()},
                "rows": [r.as_json() for r in rows]}

    @app.get("/metrics-catalog", dependencies=evaluator)
    def metrics_catalog() -> list[dict[str, Any]]:
        """Every metric: Danish and English label, unit, definition, and the events it is computed from."""
        return [m.as_json() for m in METRIC_CATALOG.values()]

    @app.get("/trials/{trial}/form", responses={200: {"content": {"text/html": {}, "text/markdown": {}}},
                                                 **openapi.problems(404)}, dependencies=evaluator)
    def evaluation_form(trial: str, request: Request, from_: From = None, to: To = None, comparison: Comparison = None,
                        format: Annotated[Literal["html", "markdown"] | None, Query(
                            description="a file to download and attach; default: the page (Markdown with "
                                        "`Accept: text/markdown`)")] = None) -> Response:
        """The Ministry's evaluation form, fields 1-10, in Danish: HTML (prints on A4), or Markdown."""
        asked = _asked(request, trial, from_, to, comparison)
        metric = asked.trial.headline_metric
        answer = form.Answer(asked.trial, asked.catalog, asked.periods, asked.comparison, asked.comparison_basis,
                             asked.evaluation(),
                             [r for lo, hi in form.chart_spans(asked.trial, asked.periods) for r in asked.series(metric, lo, hi)])
        wanted = format or ("markdown" if "text/markdown" in request.headers.get("accept", "") else "html")
        body, media_type = form.render(answer, wanted)
        headers = {"Content-Disposition": f'attachment; filename="evalueringsskema-{asked.trial.id}.'
                                          f'{"md" if wanted == "markdown" else "html"}"'} if format else None
        return Response(body, media_type=media_type, headers=headers)

    what_if_body = {"required": True, "content": {"application/json": {"schema": {"$ref": openapi.SCHEMAS + "WhatIfRequest"}}}}

    @app.post("/what-if", status_code=201, openapi_extra={"requestBody": what_if_body}, responses={
        201: {"description": "Answered at once: the job, done, with its `result`"},
        202: {"description": "Running: the job, its `progress`; `Location` is where to ask again"},
        **openapi.problems(400, 415)})
    def post_what_if(request: Request, asked: WhatIfRequest = Depends(_what_if_request),
                     caller: Principal = Depends(requires(EVALUATOR, ADMIN))) -> JSONResponse:
        """Fold a scenario (a change to the catalog, in its own format: `trials` added or replacing
        one, `without_trials`, `rules` replacing one) over the stored case histories it can change,
        beside the catalog in force; nothing stored changes. Answered at once when done within
        a few seconds, else as a job to ask again (`GET /what-if/{id}`). Post a job's `request`
        again to run it over the events stored since."""
        service: ReportingService = request.app.state.service
        catalog, as_of = service.projection.catalog, service.projection.derivation.today()
        try:
            scenario_catalog = asked.scenario.applied_to(catalog)
        except ScenarioError as exc:
            raise Problem(422, "invalid-scenario", "Invalid scenario",
                          errors=[FieldError(f"scenario.{where}", why) for where, why in exc.errors]) from None
        reach = as_of + HORIZON
        first, last = asked.scenario.months(catalog, reach)
        first, last = asked.from_ or first, asked.to or last
        if last > reach:
            raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError(
                "to", f"after {reach}: the fold looks {HORIZON.days} days ahead of today, no further")])
        if first > last:
            raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError("to", f"before from ({first})")])
        first, last = counted(first, last, reach)
        if len(months_between(first, last)) > MAX_MONTHS:
            raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError(
                "from", f"{first} to {last} is more than {MAX_MONTHS} months: ask for fewer with from and to")])
        places = asked.scenario.municipalities(catalog)
        run = Run(catalog, scenario_catalog, first, last, as_of, rules_changed(catalog, scenario_catalog) or None)
        try:
            job, future = service.what_ifs.start(asked.model_dump(mode="json", by_alias=True), asked.scenario, run,
                                                 places, caller.subject)
        except Busy:
            raise Problem(503, "busy", "Busy", detail=f"{WAITING} scenarios wait already: ask again in a minute",
                          headers={"Retry-After": "60"}) from None
        try:
            future.result(timeout=settings.what_if_wait)
        except TimeoutError:
            pass
        answer = service.what_ifs.get(job)
        location = f"/what-if/{job}"
        return JSONResponse(answer, status_code=202 if answer["status"] == "running" else 201,
                            headers={"Location": location})

    @app.get("/what-if/{job}", dependencies=[Depends(requires(EVALUATOR, ADMIN))],
             responses={200: {"content": {"text/csv": {}}}, **openapi.problems(404)})
    def get_what_if(job: str, request: Request) -> Any:
        """A scenario asked: `running` with its `progress`, `done` with its `result`, or `failed`
        with its `error`; CSV of the result with `Accept: text/csv`."""
        answer = request.app.state.service.what_ifs.get(job)
        if answer is None:
            raise Problem(404, "what-if-not-found", "No such scenario run", errors=[FieldError("job", "not asked here")])
        if "text/csv" in request.headers.get("accept", "") and answer["result"]:
            return _what_if_csv(answer["result"], f"hvad-hvis-{job}.csv")
        return JSONResponse(answer)

    @app.get("/status")
    def status(request: Request, caller: Principal = Depends(requires(*ROLES))) -> dict[str, Any]:
        """Cases, stale cases, and failed cases (listed for an admin): their facts are missing
        from every number until they are derived again."""
        return request.app.state.service.status(ADMIN in caller.roles)

    return app


@dataclass
class _Asked:
    service: ReportingService
    trial: Trial
    catalog: Catalog
    periods: dict[str, tuple[date, date]]
    comparison: list[str]
    comparison_basis: dict[str, Any]  # how the comparison group was chosen, and what is wrong with it

    def evaluation(self) -> list[Row]:
        key = ("evaluation", self.trial.id, tuple(self.periods.items()), tuple(self.comparison))
        return self.service.cached(key, lambda facts: evaluate(facts, self.catalog, self.trial, self.periods, self.comparison))

    def series(self, metric: str, lo: date, hi: date) -> list[Row]:
        key = ("series", self.trial.id, metric, lo, hi, tuple(self.comparison))
        return self.service.cached(key, lambda facts: series(facts, self.catalog, self.trial, metric, lo, hi, self.comparison))

    def describe(self) -> dict[str, Any]:
        return {"trial": self.trial.id,
                "periods": {name: {"from": lo.isoformat(), "to": hi.isoformat()} for name, (lo, hi) in self.periods.items()},
                "groups": {"trial": self.trial.municipalities, "comparison": self.comparison},
                "comparison_basis": self.comparison_basis,
                "warnings": self.comparison_basis.get("warnings", [])}


def _asked(request: Request, trial: str, start: date | None, end: date | None, comparison: str | None) -> _Asked:
    store = request.app.state.service.projection
    found = store.catalog.trials.get(trial)
    if found is None:
        raise Problem(404, "trial-not-found", "No such trial", errors=[FieldError("trial", f"{trial} is not in the catalog")])
    try:
        periods = periods_for(found, start, end, date.today())
    except PeriodError as exc:
        raise Problem(422, "invalid-request", "Invalid request",
                      errors=[FieldError(field, reason) for field, reason in exc.errors]) from None
    service = request.app.state.service
    if comparison:
        group, basis = _chosen(service, store.catalog, found, periods, _comparison(comparison))
    else:
        group, excluded, size = service.cached(("comparison", found.id, tuple(periods.items())),
                                               lambda facts: comparison_default(facts, store.catalog, found, periods))
        basis = {"chosen_by": "default", "rule": COMPARISON_RULE, "excluded": excluded, "size": size}
        if not group:
            basis["warnings"] = ["no municipality with data meets the rule: there is no comparison group, "
                                 "and no difference-in-differences"]
    return _Asked(service, found, store.catalog, periods, group, basis)


def _chosen(service: ReportingService, catalog: Catalog, trial: Trial, periods: dict[str, tuple[date, date]],
            codes: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The asked comparison group, refused if it overlaps the trial or has a municipality
    without citizens; a warning names the trials that touch what it is compared on."""
    errors = [FieldError("comparison", f"{m} is one of the trial's own municipalities: the groups overlap")
              for m in codes if m in trial.municipalities]
    with_data = service.cached(("municipalities",), lambda facts: facts.municipalities())
    errors += [FieldError("comparison", f"{m} has no citizens in the data: the group would compare nothing")
               for m in codes if m not in with_data and m not in trial.municipalities]
    if errors:
        raise Problem(422, "invalid-request", "Invalid request", errors=errors)
    first, last = periods["baseline"][0], periods["trial"][1]
    contaminated = {m: found for m in codes if (found := other_trials(catalog, trial, m, first, last, True))}
    warnings = [f"{m} runs {', '.join(found)} during the periods compared: its numbers are not those of the "
                f"ordinary rules alone" for m, found in contaminated.items()]
    return codes, {"chosen_by": "request", "rule": COMPARISON_RULE, "contaminated": contaminated, "warnings": warnings}


def _csv(rows: list[Row], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS.values())
    for r in rows:
        low, high = r.ci95 or (None, None)
        flat = {**r.as_json(), "label": label(r.metric), "group": GROUPS_DA.get(r.group, r.group),
                "period": PERIODS_DA.get(r.period, r.period), "suppressed": "ja" if r.suppressed else "nej",
                "ci95_low": low, "ci95_high": high, "other_trials_active": ", ".join(r.other_trials_active),
                "shared_with": ", ".join(trial if k is None else f"{trial}: {k}" for trial, k in r.shared_with)}
        writer.writerow(_danish(flat.get(column)) for column in CSV_COLUMNS)
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


WHAT_IF_COLUMNS = {"municipality": "kommune", "name": "kommunenavn", "month": "måned", "year": "år", "rule": "regel",
                   "projected": "fremskrevet", "required_today": "pligter i dag", "required_scenario": "pligter i scenariet",
                   "waived_today": "fritaget i dag", "waived_scenario": "fritaget i scenariet",
                   "obligations_freed": "sparede pligter", "hours_freed": "frigjorte timer",
                   "citizens_affected": "berørte borgere", "suppressed": "undertrykt"}


def _what_if_schemas() -> dict[str, Any]:
    """`WhatIfRequest` and the models it holds (the catalog's), as OpenAPI components."""
    schema = WhatIfRequest.model_json_schema(by_alias=True, ref_template=openapi.SCHEMAS + "{model}")
    return {**schema.pop("$defs"), "WhatIfRequest": schema}


def _what_if_csv(result: dict[str, Any], filename: str) -> Response:
    """A what-if's cells, one row each: per municipality its months and rules, then the total."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(WHAT_IF_COLUMNS.values())

    def row(cell: dict[str, Any], **where: Any) -> None:
        flat = {**cell, **where, "suppressed": "ja" if cell["suppressed"] else "nej",
                "projected": {True: "ja", False: "nej"}.get(cell.get("projected"))}
        writer.writerow(_danish(flat.get(column)) for column in WHAT_IF_COLUMNS)

    for place in result["municipalities"]:
        where = {"municipality": place["municipality"], "name": place["name"]}
        for cell in place["months"] + place["years"] + place["rules"]:
            row(cell, **where)
        row(place, **where)
    for cell in result["total"]["rules"]:
        row(cell, name="I alt")
    row(result["total"], name="I alt")
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _danish(value: Any) -> str:
    """A cell as Danish Excel reads it: nothing for None, a decimal comma."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


def _comparison(text: str) -> list[str]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in municipalities()]
    if unknown or not codes:
        raise Problem(422, "invalid-request", "Invalid request",
                      errors=[FieldError("comparison", f"not kommunekoder: {unknown or text}")])
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise Problem(422, "invalid-request", "Invalid request",
                      errors=[FieldError("comparison", f"named more than once: {', '.join(twice)}")])
    return codes


app = create_app()
