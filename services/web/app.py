"""The web service: server-rendered pages in Danish, dressed in Det Fælles Designsystem, that
call the APIs with the signed-in user's token. It holds no data and adds no rights: what a user
may see is what the APIs answer for their token.

The session (the user's token, role and municipality, and the CSRF token of their forms) lives in
a signed cookie, HttpOnly and SameSite=Lax, Secure outside development. Every POST carries the
session's CSRF token in a hidden field and is refused (403) without it."""

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError
from starlette.middleware.sessions import SessionMiddleware

from services.web import danish
from services.web.settings import WebSettings
from shared.auth import ADMIN, CASEWORKER, EVALUATOR, development_token
from shared.events import Code
from shared.municipalities import municipalities

HERE = Path(__file__).parent
SIGN_IN_ROLES = (CASEWORKER, EVALUATOR, ADMIN)  # people's roles; `integration` is a system's
WAIVED_SINCE = timedelta(days=365)  # the worklist lists exemptions of tasks due this long back, and later
LISTED = 100  # tasks shown per table (the API's page)

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(long_date=danish.long_date, number=danish.number, kommune=danish.kommune)
templates.env.globals.update(STATUSES=danish.STATUSES, ROLES=danish.ROLES)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=30) as client:
            app.state.http = client
            yield

    app = FastAPI(title="Frisag web", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    key = settings.session_key.get_secret_value() if settings.session_key else secrets.token_urlsafe(32)
    app.add_middleware(SessionMiddleware, secret_key=key, session_cookie="frisag_session", same_site="lax",
                       https_only=settings.environment != "development", max_age=settings.session_hours * 3600)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def index() -> Response:
        return RedirectResponse("/opgaver", status_code=303)

    @app.get("/log-ind")
    def sign_in_form(request: Request) -> Response:
        if not settings.development_sign_in:
            return no_sign_in(request)
        return sign_in_page(request, {}, {"role": CASEWORKER, "municipality": "851", "caseworker": ""})

    @app.post("/log-ind")
    async def sign_in(request: Request) -> Response:
        form = await checked_form(request)
        if form is None:
            return csrf_refused(request)
        if not settings.development_sign_in:
            return no_sign_in(request)
        role, code, caseworker = form.get("role", ""), form.get("municipality", ""), form.get("caseworker", "").strip()
        errors = {}
        if role not in SIGN_IN_ROLES:
            errors["role"] = "Vælg en rolle."
        if code not in municipalities():
            errors["municipality"] = "Vælg en kommune på listen."
        if caseworker:
            try:
                TypeAdapter(Code).validate_python(caseworker)  # as `case.assigned` names one: never a CPR number
            except ValidationError:
                errors["caseworker"] = ("Sagsbehandler-id må kun have bogstaver a-z, tal og tegnene . _ : - "
                                        "og må ikke være et CPR-nummer.")
        if errors:
            return sign_in_page(request, errors, form, status=422)
        codes = [code] if role == CASEWORKER else []  # as the development tokens: only a caseworker acts for one
        subject = caseworker or "-".join(["dev", role, *codes])
        token = development_token(settings, subject, [role], codes)
        # every key anew, the CSRF token too: nothing of the signed-out session carries over
        request.session.update(token=token, role=role, municipality=code if codes else None,
                               caseworker=caseworker or None, csrf=secrets.token_urlsafe(32))
        return RedirectResponse("/opgaver", status_code=303)

    @app.post("/log-ud")
    async def sign_out(request: Request) -> Response:
        if await checked_form(request) is None:
            return csrf_refused(request)
        request.session.clear()
        return RedirectResponse("/log-ind", status_code=303)

    @app.get("/opgaver")
    async def worklist(request: Request, dato: str | None = None) -> Response:
        session = request.session
        if "token" not in session:
            return RedirectResponse("/log-ind", status_code=303)
        try:
            as_of = date.fromisoformat(dato) if dato else date.today()
        except ValueError:
            return page(request, "problem.html", 422, title="Ugyldig dato",
                        message="Datoen skal skrives som år-måned-dag, fx 2020-03-01.")
        # the municipality is the token's one (the API's default)
        query: dict[str, Any] = {"as_of": as_of.isoformat()}
        if session.get("caseworker"):
            query["caseworker"] = session["caseworker"]
        # the tasks, the exemptions, and one answer per status for its count (`total`)
        asks = [{"status": ["due", "overdue"], "limit": LISTED},
                {"status": "waived", "due_after": (as_of - WAIVED_SINCE).isoformat(), "sort": "due", "limit": LISTED},
                *({"status": status, "limit": 1} for status in danish.STATUSES)]
        try:
            answers = await asyncio.gather(*(request.app.state.http.get(
                f"{settings.obligations_url}/obligations", params=query | ask,
                headers={"Authorization": f"Bearer {session['token']}"}) for ask in asks))
        except httpx.HTTPError:
            return unavailable(request)
        for answer in answers:
            if answer.status_code != 200:
                return refused(request, answer.status_code)
        tasks, waived, *per_status = (answer.json() for answer in answers)
        for item in tasks["items"]:
            item["days_overdue"] = danish.days_overdue(item["deadline"], as_of)  # 0 unless overdue
        return page(request, "worklist.html", title="Mine opgaver", as_of=as_of, tasks=tasks, waived=waived,
                    waived_since=as_of - WAIVED_SINCE,
                    counts={status: answer["total"] for status, answer in zip(danish.STATUSES, per_status)},
                    not_derived=tasks["cases_not_derived"])

    def sign_in_page(request: Request, errors: dict[str, str], chosen: dict[str, str], status: int = 200) -> Response:
        return page(request, "sign_in.html", status, title="Log ind", errors=errors, chosen=chosen,
                    roles=SIGN_IN_ROLES, municipalities=sorted(municipalities().items(), key=lambda m: m[1]))

    def no_sign_in(request: Request) -> Response:
        return page(request, "problem.html", 404, title="Udviklingslogin er slået fra",
                    message="Tjenesterne bruger identitetsudbyderens nøgler (AUTH_JWKS_URL), så denne side udsteder "
                            "ingen udviklingsadgang. Log ind via identitetsudbyderen er endnu ikke bygget.")

    return app


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    user = request.session if "token" in request.session else None
    return templates.TemplateResponse(request, template, {"csrf": csrf_token(request), "user": user, **context},
                                      status_code=status)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made with its first form."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


async def checked_form(request: Request) -> dict[str, str] | None:
    """The posted form's fields, or None when it lacks the session's CSRF token."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    form = {name: values[0] for name, values in fields.items()}
    expected = request.session.get("csrf")
    if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        return None
    return form


def csrf_refused(request: Request) -> HTMLResponse:
    return page(request, "problem.html", 403, title="Formularen blev afvist",
                message="Formularen kom ikke fra denne side i din session (den kan være udløbet). "
                        "Gå tilbage, genindlæs siden og prøv igen.")


def refused(request: Request, status: int) -> Response:
    """An API's refusal, in Danish; a refused token (expired, or signed with another key) signs out."""
    if status == 401:
        request.session.clear()
        return RedirectResponse("/log-ind", status_code=303)
    if status == 403:
        return page(request, "problem.html", 403, title="Ingen adgang",
                    message="Opgavetjenesten giver ikke din rolle eller kommune adgang til denne opgaveliste. "
                            "Opgavelister er for sagsbehandlere, i de kommuner de arbejder for.")
    if status == 404:
        return page(request, "problem.html", 404, title="Ikke fundet", message="Opgavetjenesten kender ikke det, du bad om.")
    if status == 422:
        return page(request, "problem.html", 422, title="Forespørgslen kunne ikke besvares",
                    message="Opgavetjenesten kan ikke svare for den valgte dato, fx fordi den ligger for langt ude "
                            "i fremtiden. Vælg en anden dato.")
    return unavailable(request)


def unavailable(request: Request) -> HTMLResponse:
    return page(request, "problem.html", 502, title="Opgavetjenesten svarer ikke",
                message="Opgavetjenesten kunne ikke svare lige nu. Prøv igen om lidt.")


app = create_app()
