"""HTTP entrypoint of the reporting service: the trials and their evaluation numbers."""

import csv
import io
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

from services.reporting.bootstrap import ReportingService, bootstrap
from services.reporting.evaluation import Facts, comparison_default, evaluate, periods_for
from services.reporting.settings import ReportingSettings
from shared.app import service_app
from shared.municipalities import municipalities
from shared.problems import FieldError, Problem

CSV_COLUMNS = ["metric", "rule", "of", "group", "period", "municipality", "value", "n", "suppressed", "ci95_low", "ci95_high"]


def create_app(service_factory: Callable[[], ReportingService] = lambda: bootstrap(ReportingSettings())) -> FastAPI:
    app = service_app(
        "Frisag reporting service",
        "The trials' evaluation numbers, computed from the same event stream: trial municipalities "
        "against a comparison group, baseline against trial period. Counts under 5 citizens are suppressed.",
        service_factory,
    )

    @app.get("/trials")
    def trials(request: Request) -> list[dict[str, Any]]:
        """The trial catalog."""
        return [t.model_dump(mode="json") for t in request.app.state.service.projection.catalog.trials.values()]

    @app.get("/trials/{trial}/evaluation", responses={200: {"content": {"text/csv": {}}}})
    def evaluation(
        trial: str,
        request: Request,
        from_: Annotated[date | None, Query(alias="from", description="default: the trial's start")] = None,
        to: Annotated[date | None, Query(description="default: the trial's end, or today")] = None,
        comparison: Annotated[str | None, Query(description="kommunekoder, comma-separated; default: all outside the trial with data")] = None,
    ) -> Any:
        """Every number as a row `{metric, rule, group, period, municipality, value, n, suppressed}`;
        CSV with `Accept: text/csv`."""
        store = request.app.state.service.projection
        found = store.catalog.trials.get(trial)
        if found is None:
            raise Problem(404, "trial-not-found", "No such trial", errors=[FieldError("trial", f"{trial} is not in the catalog")])
        try:
            periods = periods_for(found, from_, to, date.today())
        except ValueError as exc:
            raise Problem(422, "invalid-request", "Invalid request", errors=[FieldError("to", str(exc))]) from None
        facts = Facts.load(store.engine)
        group = _comparison(comparison) if comparison else comparison_default(facts, found)
        rows = [r.as_json() for r in evaluate(facts, store.catalog, found, periods, group)]
        if "text/csv" in request.headers.get("accept", ""):
            out = io.StringIO()
            writer = csv.DictWriter(out, CSV_COLUMNS)
            writer.writeheader()
            for r in rows:
                low, high = r.pop("ci95", None) or (None, None)
                flat = {**r, "ci95_low": low, "ci95_high": high}
                writer.writerow({k: "" if flat.get(k) is None else flat[k] for k in CSV_COLUMNS})
            return Response(out.getvalue(), media_type="text/csv")
        return {
            "trial": trial,
            "periods": {name: {"from": lo.isoformat(), "to": hi.isoformat()} for name, (lo, hi) in periods.items()},
            "groups": {"trial": found.municipalities, "comparison": group},
            "rows": rows,
        }

    @app.get("/status")
    def status(request: Request) -> dict[str, int]:
        return request.app.state.service.projection.counts()

    return app


def _comparison(text: str) -> list[str]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in municipalities()]
    if unknown or not codes:
        raise Problem(422, "invalid-request", "Invalid request",
                      errors=[FieldError("comparison", f"not kommunekoder: {unknown or text}")])
    return codes


app = create_app()
