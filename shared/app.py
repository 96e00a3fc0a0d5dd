"""The FastAPI application every service starts from: its service object built at start-up and
closed at shutdown, problem+json for every error, liveness (`/healthz`), readiness (`/readyz`:
the service's `readiness()`, each failing check with its reason), Prometheus `/metrics` (the
service's `metrics()` and the requests answered), and its documentation: Swagger UI on `/docs`
and ReDoc on `/redoc`, their scripts served from the `fastapi-offline` package (no CDN), and
`/` linking to them."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from shared import logs, openapi, problems
from shared.audit import AuditTrail, audited
from shared.auth import ADMIN, requires
from shared.dates import RANGE, QueryMoment
from shared.events import CASE_ID_PATTERN
from shared.hardening import Hardening, TimeLimit
from shared.metrics import Collected, CountRequests, Requests
from shared.problems import FieldError, Problem
from shared.query import DeclaredQueryOnly
from shared.settings import ServiceSettings


DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's scripts, styles and icon


def service_app(title: str, description: str, service_factory: Callable[[], Any], settings: ServiceSettings,
                schemas: dict[str, Any] | None = None) -> FastAPI:
    """`app.state.service` is `service_factory()` while the app runs (closed afterwards);
    `settings` gives the HTTP limits and the CORS origins; `schemas` are the OpenAPI components
    the routes refer to beside FastAPI's own (`shared.openapi`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.configure()
        app.state.service = service_factory()
        yield
        app.state.service.close()

    # the validator would send the schema's address to swagger.io; an operation's id is its
    # function's name, which a generated client names its call after (`get_case`, not `get_case_cases__case_id__get`)
    app = FastAPIOffline(title=title, version="0.1.0", description=description, lifespan=lifespan,
                         static_url=DOCS_ASSETS, swagger_ui_parameters={"validatorUrl": None},
                         generate_unique_id_function=lambda route: route.name)
    problems.install(app)
    app.router.route_class = DeclaredQueryOnly  # every route added from here on (not the docs' own)
    openapi.describe(app, schemas)
    requests = Requests()
    app.add_middleware(TimeLimit, seconds=settings.request_timeout_seconds)
    app.add_middleware(CountRequests, requests=requests)
    if settings.cors_origins:  # browsers elsewhere may call only from these origins
        app.add_middleware(CORSMiddleware, allow_origins=[o.strip() for o in settings.cors_origins.split(",")],
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type", "traceparent"])
    app.add_middleware(AuditTrail)
    app.add_middleware(Hardening, max_body_bytes=settings.max_body_bytes)  # outermost: sees every answer

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> dict[str, Any]:
        """Where to go from here: a browser or a curl at the service's address finds its docs."""
        root = request.scope.get("root_path", "")
        return {"service": title, "docs": f"{root}/docs", "redoc": f"{root}/redoc",
                "openapi": f"{root}{app.openapi_url}", "health": f"{root}/healthz", "ready": f"{root}/readyz"}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Not ready: the failing checks"}})
    def readyz(request: Request) -> dict[str, str]:
        service = request.app.state.service
        failing = service.readiness() if hasattr(service, "readiness") else {}
        if failing:
            raise Problem(503, "not-ready", "Not ready", errors=[FieldError(check, reason) for check, reason in failing.items()])
        return {"status": "ready"}

    @app.get("/audit", dependencies=[Depends(audited("read audit log")), Depends(requires(ADMIN))])
    def audit(
        request: Request,
        subject: Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00]*$")] = None,
        case_id: Annotated[str | None, Query(pattern=CASE_ID_PATTERN)] = None,
        action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z ]+$")] = None,
        since: Annotated[QueryMoment | None, Query(description=RANGE)] = None,
        until: Annotated[QueryMoment | None, Query(description=RANGE)] = None,
        after: Annotated[int, Query(ge=0, le=2**31 - 1, description="the last `id` of the previous page")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        order: Annotated[Literal["oldest", "newest"], Query(
            description="`newest`: the latest `limit` records first (no `next_after`; page back with `until`)")] = "oldest",
    ) -> dict[str, Any]:
        """This service's audit log, oldest first: every read of a case's data and every admin
        action, refusals included, with who (`subject`, `username`, `roles`), what, when (`at`) and from
        where (`client`). Pass the last `id` as `after` for the next page."""
        newest = order == "newest"
        records = request.app.state.service.audit.query(subject=subject, case_id=case_id, action=action,
                                                        since=since, until=until, after=after, limit=limit,
                                                        newest_first=newest)
        return {"records": records, "next_after": records[-1]["id"] if len(records) == limit and not newest else None}

    scraped = CollectorRegistry()  # the app's own: several apps in one process (the tests) count apart
    scraped.register(requests)
    scraped.register(Collected(lambda: app.state.service.metrics() if hasattr(app.state.service, "metrics") else []))

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> Response:
        """Prometheus' classic text format, or OpenMetrics when the scraper's `Accept` asks for it."""
        encode, media_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(scraped), media_type=media_type)

    return app
