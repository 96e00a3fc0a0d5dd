"""The web service: server-rendered pages in Danish, dressed in Det Fælles Designsystem, that
call the APIs with the signed-in user's token. It holds no data and adds no rights: what a user
may see is what the APIs answer for their token.

The session (the user's token, role and municipality, and the CSRF token of their forms) lives in
an encrypted cookie, HttpOnly and SameSite=Lax, Secure outside development. Every POST carries the
session's CSRF token in a hidden field and is refused (403) without it.

Users sign in through the identity provider (OpenID Connect, `services/web/oidc.py`) when
OIDC_CLIENT_ID is set; with the development keys, on a page that mints development tokens."""

import asyncio
import hmac
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError

from services.web import danish, whatif
from services.web.chart import line_chart, month_name
from services.web.oidc import Provider, RoundTrip, SignInFailed
from services.web.operations import SignedOut, service_state
from services.web.session import EncryptedSessionMiddleware
from services.web.settings import WebSettings
from shared.auth import ADMIN, CASEWORKER, EVALUATOR, development_token
from shared.catalog import Catalog
from shared.events import CASE_ID_PATTERN, Code
from shared.municipalities import municipalities

HERE = Path(__file__).parent
SIGN_IN_ROLES = (CASEWORKER, EVALUATOR, ADMIN)  # people's roles; `integration` is a system's
WAIVED_SINCE = timedelta(days=365)  # the worklist lists exemptions of tasks due this long back, and later
LISTED = 100  # tasks shown per table (the API's page)
OPEN = "open"  # the worklist's status choice by default: due and overdue
STATUS_CHOICES = {OPEN: "Aktuelle og overskredne", **danish.STATUSES}
JOB = r"[0-9a-f-]{36}"  # a what-if job's id (a UUID), checked before it goes into the reporting service's URL
REFRESH_SECONDS = 3  # a running what-if's page asks again this often
Chosen = Annotated[list[str], Query()]  # the comparison kommuner ticked, each its own sammenligning=
# rule and trial titles for the filters (the obligations service reads the same packaged catalog
# unless CATALOG_DIR points it elsewhere)
catalog = Catalog.load()

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(long_date=danish.long_date, number=danish.number, kommune=danish.kommune,
                             amount=danish.amount)
templates.env.globals.update(STATUSES=danish.STATUSES, ROLES=danish.ROLES, STATUS_CHOICES=STATUS_CHOICES,
                             EFFECTS=danish.EFFECTS, HOME=danish.HOME, SERVICES=danish.SERVICES,
                             AUDIT_ACTIONS=danish.AUDIT_ACTIONS)
templates.env.filters.update(moment=danish.moment)
templates.env.globals.update(month_name=month_name)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=30) as client:
            app.state.http = client
            yield

    app = FastAPI(title="Frisag web", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    key = settings.session_key.get_secret_value() if settings.session_key else secrets.token_urlsafe(32)
    # Lax, not Strict: the provider's redirect back to /log-ind/retur must carry the session's state
    app.add_middleware(EncryptedSessionMiddleware, secret_key=key, session_cookie="frisag_session", same_site="lax",
                       https_only=settings.environment != "development", max_age=settings.session_hours * 3600)
    provider = Provider(settings) if settings.oidc_client_id else None
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def index(request: Request) -> Response:
        return RedirectResponse(danish.HOME.get(request.session.get("role"), "/opgaver"), status_code=303)

    @app.get("/log-ind")
    async def sign_in_form(request: Request) -> Response:
        if provider is not None:  # to the identity provider, with this sign-in's state, nonce and PKCE verifier kept
            trip = RoundTrip.new()
            try:
                url = await provider.authorization_url(request.app.state.http, trip)
            except SignInFailed as failed:
                return sign_in_failed(request, failed)
            request.session["oidc"] = asdict(trip)
            return RedirectResponse(url, status_code=303)
        if not settings.development_sign_in:
            return no_sign_in(request)
        return sign_in_page(request, {}, {"role": CASEWORKER, "municipality": "851", "caseworker": ""})

    @app.get("/log-ind/retur")
    async def signed_in_at_the_provider(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
        """The identity provider's answer: the user signed in with the role and municipality
        their access token grants, or a Danish page saying why not (nothing signed in)."""
        if provider is None:
            return no_sign_in(request)
        kept = request.session.pop("oidc", None)  # one answer per sign-in: a second finds none
        if not kept or not state or not hmac.compare_digest(state.encode(), kept["state"].encode()):
            return sign_in_failed(request, SignInFailed(400, (
                "Svaret fra identitetsudbyderen hører ikke til et log ind, der er startet her i din browser (det kan "
                "være udløbet, eller startet i en anden fane). Prøv at logge ind igen.")))
        if error or not code:
            named = f" ({error})" if re.fullmatch(r"[a-z_]{1,64}", error) else ""  # an RFC 6749 error code, no prose
            return sign_in_failed(request, SignInFailed(400, (
                f"Identitetsudbyderen loggede dig ikke ind{named}. Prøv igen, "
                "eller kontakt den, der giver adgang til Frisag i din organisation.")))
        try:
            signed_in = await provider.sign_in(request.app.state.http, RoundTrip(**kept), code)
        except SignInFailed as failed:
            return sign_in_failed(request, failed)
        principal = signed_in.principal
        role = next((role for role in SIGN_IN_ROLES if role in principal.roles), None)
        if role is None:
            return sign_in_failed(request, SignInFailed(403, (
                "Din bruger hos identitetsudbyderen har ingen rolle i Frisag (sagsbehandler, evaluator eller "
                "driftsansvarlig). Kontakt den, der giver adgang til Frisag i din organisation.")))
        # a caseworker's worklist is of one kommune: of several, the first by code (there is no choosing yet)
        codes = sorted(principal.municipalities) if role == CASEWORKER else []
        # "Mine opgaver" are those `case.assigned` gives the id the provider knows the caseworker by:
        # the username, else the subject (a development token's subject is that id); none: the kommune's
        caseworker = next((c for c in (principal.username, principal.subject) if c and is_code(c)), None) \
            if role == CASEWORKER else None
        return start_session(request, signed_in.access_token, role, codes[0] if codes else None, caseworker)

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
        if caseworker and not is_code(caseworker):
            errors["caseworker"] = ("Sagsbehandler-id må kun have bogstaver a-z, tal og tegnene . _ : - "
                                    "og må ikke være et CPR-nummer.")
        if errors:
            return sign_in_page(request, errors, form, status=422)
        codes = [code] if role == CASEWORKER else []  # as the development tokens: only a caseworker acts for one
        subject = caseworker or "-".join(["dev", role, *codes])
        token = development_token(settings, subject, [role], codes)
        return start_session(request, token, role, code if codes else None, caseworker or None)

    @app.post("/log-ud")
    async def sign_out(request: Request) -> Response:
        if await checked_form(request) is None:
            return csrf_refused(request)
        request.session.clear()
        if provider is None:
            return RedirectResponse("/log-ind", status_code=303)
        # not to /log-ind, which would sign the user straight in again while the provider's own session lasts
        ended = await provider.sign_out_url(request.app.state.http)
        return RedirectResponse(ended or "/logget-ud", status_code=303)

    @app.get("/logget-ud")
    def signed_out(request: Request) -> Response:
        return page(request, "signed_out.html", title="Du er logget ud")

    @app.get("/opgaver")
    async def worklist(request: Request, dato: str | None = None, regel: str = "", forsoeg: str = "",
                       status: str = OPEN, sagsbehandler: str | None = None) -> Response:
        """The caseworker's own tasks (by default those of the caseworker id they signed in with)."""
        if sagsbehandler is None:
            sagsbehandler = request.session.get("caseworker") or ""
        return await worklist_page(request, "/opgaver", "Mine opgaver", dato, regel, forsoeg, status, sagsbehandler)

    @app.get("/team")
    async def team(request: Request, dato: str | None = None, regel: str = "", forsoeg: str = "",
                   status: str = OPEN, sagsbehandler: str = "") -> Response:
        """A team leader's view: the tasks of every caseworker of the municipality, with counts
        per caseworker. The same reading a caseworker's token gives (no right added)."""
        return await worklist_page(request, "/team", "Teamets opgaver", dato, regel, forsoeg, status, sagsbehandler)

    @app.get("/opgaver/aendringer")
    async def worklist_changes(request: Request) -> Response:
        """The obligations service's change feed (Server-Sent Events) for the user's municipality,
        passed on with their token, which the browser does not have: the worklist's script
        listens to it. The browser's Last-Event-ID goes along, so a reconnection misses nothing."""
        session = request.session
        if "token" not in session:
            return Response(status_code=401)
        headers = {"Authorization": f"Bearer {session['token']}", "Accept": "text/event-stream"}
        if "last-event-id" in request.headers:
            headers["Last-Event-ID"] = request.headers["last-event-id"]
        params = {"municipality": session["municipality"]} if session.get("municipality") else {}
        http = request.app.state.http
        try:
            upstream = await http.send(http.build_request("GET", f"{settings.obligations_url}/obligations/changes",
                                                          params=params, headers=headers), stream=True)
        except httpx.HTTPError:
            return Response(status_code=503)
        if upstream.status_code != 200:  # an EventSource gives up on it: the page stays as it is
            await upstream.aclose()
            return Response(status_code=upstream.status_code)

        async def passed_on() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return  # the obligations service went: the browser reconnects
            finally:
                await upstream.aclose()

        return StreamingResponse(passed_on(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def worklist_page(request: Request, path: str, title: str, dato: str | None, rule: str, trial: str,
                            status: str, caseworker: str) -> Response:
        session = request.session
        if "token" not in session:
            return RedirectResponse("/log-ind", status_code=303)
        as_of = as_of_date(dato)
        if as_of is None:
            return invalid_date(request)
        caseworker = caseworker.strip()
        errors = [message for wrong, message in (
            (rule and rule not in catalog.rules, "Vælg en regel på listen."),
            (trial and trial not in catalog.trials, "Vælg et forsøg på listen."),
            (status not in STATUS_CHOICES, "Vælg en status på listen."),
            (caseworker and not is_code(caseworker), "Sagsbehandler-id må kun have bogstaver a-z, tal og tegnene . _ : -")) if wrong]
        if errors:
            return page(request, "problem.html", 422, title="Ugyldigt filter", message=" ".join(errors))
        # the session's municipality: the token's one (the API's default), or of several the one signed in for
        query = {"municipality": session.get("municipality"), "as_of": as_of.isoformat(), "caseworker": caseworker,
                 "rule": rule, "trial": trial}
        query = {name: value for name, value in query.items() if value}
        asks = [("/obligations", {"status": ["due", "overdue"] if status == OPEN else status, "limit": LISTED}),
                ("/obligations/counts", {})]
        if status == OPEN:  # beside the open tasks, the recent exemptions: why no task exists
            asks.append(("/obligations", {"status": "waived", "due_after": (as_of - WAIVED_SINCE).isoformat(),
                                          "sort": "due", "limit": LISTED}))
        answers = await ask_all(request, [("obligations", settings.obligations_url + url, query | params)
                                          for url, params in asks])
        if isinstance(answers, Response):
            return answers
        tasks, counts, *waived = answers
        for item in tasks["items"]:
            item["days_overdue"] = danish.days_overdue(item["deadline"], as_of)  # 0 unless overdue
        codes = [session["municipality"]] if session.get("municipality") else list(municipalities())
        return page(request, "worklist.html", title=title, path=path, team=path == "/team", as_of=as_of,
                    tasks=tasks, waived=waived[0] if waived else None, waived_since=as_of - WAIVED_SINCE,
                    counts=counts, not_derived=tasks["cases_not_derived"],
                    chosen={"rule": rule, "trial": trial, "status": status, "caseworker": caseworker},
                    rules=sorted(catalog.rules.values(), key=lambda r: r.title),
                    trials=[t for t in sorted(catalog.trials.values(), key=lambda t: int(t.id[1:]))
                            if not set(codes).isdisjoint(t.municipalities)])

    @app.get("/sager/{case_id}")
    async def case_page(request: Request, case_id: str, dato: str | None = None) -> Response:
        """A case: its timeline (CPR number masked by the case service), its obligations as of
        a date with why, and when which trials apply to it."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        as_of = as_of_date(dato)
        if as_of is None:
            return invalid_date(request)
        if not re.fullmatch(CASE_ID_PATTERN, case_id):
            return no_case(request, case_id)
        answers = await ask_all(request, [("case", f"{settings.case_url}/cases/{case_id}", {}),
                                          ("obligations", f"{settings.obligations_url}/cases/{case_id}/obligations",
                                           {"as_of": as_of.isoformat()})], case_id=case_id)
        if isinstance(answers, Response):
            return answers
        history, found = answers
        events = sorted(history["events"], key=lambda e: (e["data"].get("date", ""), e["sequence"]))
        return page(request, "case.html", title=f"Sag {case_id}", case_id=case_id, as_of=as_of,
                    events=[(e["data"].get("date"), *danish.describe_event(e["type"], e["data"])) for e in events],
                    obligations=found["obligations"], trials=found["trials"])

    @app.get("/forsoeg")
    async def trial_catalog(request: Request) -> Response:
        """Every trial: its municipalities, period and effects with their legal references."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        answers = await ask_all(request, [("reporting", f"{settings.reporting_url}/trials", {})])
        if isinstance(answers, Response):
            return answers
        (trials,) = answers
        return page(request, "trials.html", title="Forsøg", trials=sorted(trials, key=lambda t: int(t["id"][1:])),
                    effects={t["id"]: effects_in_danish(t["effects"]) for t in trials})

    @app.get("/forsoeg/{trial_id}")
    async def trial_page(request: Request, trial_id: str, sammenligning: Chosen = []) -> Response:
        """A trial's evaluation: the numbers, the headline metric month by month from before the
        trial, the difference-in-differences in words, the comparison group to choose, downloads."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        if trial_id not in catalog.trials:
            return no_trial(request, trial_id)
        query = comparison_query(trial_id, sammenligning)
        if query is None:
            return page(request, "problem.html", 422, title="Ugyldig sammenligningsgruppe",
                        message="Vælg sammenligningskommunerne på listen.")
        metric = catalog.trials[trial_id].headline_metric
        url = f"{settings.reporting_url}/trials/{trial_id}"
        answers = await ask_all(request, [("reporting", f"{settings.reporting_url}/trials", {}),
                                          ("reporting", f"{url}/evaluation", query),
                                          ("reporting", f"{url}/series", query | {"metric": metric, "span": "baseline"}),
                                          ("reporting", f"{url}/series", query | {"metric": metric}),
                                          ("reporting", f"{settings.reporting_url}/metrics-catalog", {})])
        if isinstance(answers, Response):
            return answers
        trials, evaluation, before, during, metrics = answers
        trial = next(t for t in trials if t["id"] == trial_id)
        metrics = {m["id"]: m for m in metrics}
        months, values, cells = monthly(before["rows"] + during["rows"], metrics[metric]["unit"])
        totals, places = evaluation_tables(evaluation["rows"], metrics)
        did = [danish.interval_words(metrics[r["of"]]["label_da"] + (f", {r['rule']}" if r["rule"] else ""),
                                     metrics[r["of"]]["unit"], r["value"], *(r["ci95"] or (None, None)))
               for r in evaluation["rows"] if r["metric"] == "did_estimate" and r["municipality"] is None]
        group = evaluation["groups"]["comparison"]
        return page(request, "trial.html", title=f"{trial_id}: {trial['title']}", trial=trial, evaluation=evaluation,
                    periods={name: (date.fromisoformat(p["from"]), date.fromisoformat(p["to"]))
                             for name, p in evaluation["periods"].items()},
                    chart=line_chart(months, values, metrics[metric]["unit"], during["rows"][0]["period"] if during["rows"] else "",
                                     metrics[metric]["label_da"]),
                    metric=metrics[metric], months=[(month_name(m), cells[m]) for m in months],
                    totals=totals, places=places, did=did, group=group, effects=effects_in_danish(trial["effects"]),
                    chosen_by=evaluation["comparison_basis"].get("chosen_by"),
                    contaminated=evaluation["comparison_basis"].get("contaminated", {}),
                    candidates=sorted((code for code in municipalities() if code not in trial["municipalities"]),
                                      key=lambda code: municipalities()[code]),
                    query="&".join(f"sammenligning={code}" for code in sammenligning))

    @app.get("/forsoeg/{trial_id}/evaluering.csv")
    async def evaluation_csv(request: Request, trial_id: str, sammenligning: Chosen = []) -> Response:
        """The evaluation's numbers as the reporting service writes them in CSV."""
        return await passed_on(request, trial_id, "evaluation", sammenligning, {}, "text/csv")

    @app.get("/forsoeg/{trial_id}/evalueringsskema")
    async def evaluation_form(request: Request, trial_id: str, sammenligning: Chosen = [],
                              format: str = "html") -> Response:
        """The evaluation form, a file to download (HTML, or Markdown), as the reporting service writes it."""
        if format not in ("html", "markdown"):
            return page(request, "problem.html", 422, title="Ukendt format", message="Vælg HTML eller Markdown.")
        return await passed_on(request, trial_id, "form", sammenligning, {"format": format}, "*/*")

    async def passed_on(request: Request, trial_id: str, what: str, codes: list[str], params: dict[str, str],
                        accept: str) -> Response:
        """The reporting service's answer, asked with the user's token, passed on as it is (a file
        to download): the browser cannot send the token itself."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        query = comparison_query(trial_id, codes)
        if trial_id not in catalog.trials or query is None:
            return no_trial(request, trial_id)
        try:
            answer = await request.app.state.http.get(
                f"{settings.reporting_url}/trials/{trial_id}/{what}", params=query | params,
                headers={"Authorization": f"Bearer {request.session['token']}", "Accept": accept})
        except httpx.HTTPError:
            return unavailable(request, "reporting")
        if answer.status_code != 200:
            return refused(request, answer.status_code, "reporting")
        return Response(answer.content, media_type=answer.headers["content-type"],
                        headers={"Content-Disposition": answer.headers["content-disposition"]})

    @app.get("/hvad-hvis")
    async def what_if_form(request: Request, forsoeg: str = "") -> Response:
        """The scenario form: a draft made from a trial of the catalog (`?forsoeg=T11`) or from nothing."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        trials = await reporting_trials(request)
        if isinstance(trials, Response):
            return trials
        if forsoeg and forsoeg not in trials:
            return no_trial(request, forsoeg)
        return what_if_page(request, trials, whatif.form_from_trial(trials.get(forsoeg)), {})

    @app.post("/hvad-hvis")
    async def what_if_asked(request: Request) -> Response:
        """The scenario posted to the reporting service; on to its page, or the form again with
        what is wrong in Danish."""
        form = await checked_form(request)
        if form is None:
            return csrf_refused(request)
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        trials = await reporting_trials(request)
        if isinstance(trials, Response):
            return trials
        base = form.get("grundlag", "")
        if base and base not in trials:
            return no_trial(request, base)
        body, errors = whatif.scenario_request(form, trials.get(base), set(trials), sorted(municipalities()))
        if errors:
            return what_if_page(request, trials, form, errors, status=422)
        try:
            answer = await request.app.state.http.post(
                f"{settings.reporting_url}/what-if", json=body,
                headers={"Authorization": f"Bearer {request.session['token']}"})
        except httpx.HTTPError:
            return unavailable(request, "reporting")
        if answer.status_code == 422:
            return what_if_page(request, trials, form, whatif.refused_fields(answer.json().get("errors", [])), status=422)
        if answer.status_code == 503:
            return page(request, "problem.html", 503, title="Rapporteringstjenesten har travlt",
                        message="Der venter allerede flere scenarier på at blive regnet igennem. Prøv igen om et minut.")
        if answer.status_code not in (201, 202):
            return refused(request, answer.status_code, "reporting")
        return RedirectResponse(f"/hvad-hvis/{answer.json()['id']}", status_code=303)

    @app.get("/hvad-hvis/{job}")
    async def what_if_result(request: Request, job: str) -> Response:
        """A scenario's answer: its progress while it runs (the page asks again by itself), then
        per kommune its months, the total by rule, the assumptions."""
        asked = await what_if_job(request, job)
        if isinstance(asked, Response):
            return asked
        result = asked["result"]
        if asked["status"] != "done":
            return page(request, "whatif.html", title=f"Scenarie: {asked['request']['scenario']['title']}", job=asked,
                        refresh=REFRESH_SECONDS if asked["status"] == "running" else None)
        charts = {place["municipality"]: line_chart(
            [m["month"] for m in place["months"]],
            {"freed": [None if m["suppressed"] else m["obligations_freed"] for m in place["months"]]}, "pligter",
            (result["projected_from"] or "")[:7], f"Sparede pligter i {place['name']}", "fremskrevet herfra",
            f"graf-{place['municipality']}") for place in result["municipalities"]}
        return page(request, "whatif.html", title=f"Scenarie: {result['title']}", job=asked, result=result,
                    charts=charts, words=whatif.scenario_in_words(asked["request"], catalog), cell=whatif.cell,
                    rule_name=lambda rule: whatif.rule_name(rule, catalog))

    @app.get("/hvad-hvis/{job}/bilag")
    async def what_if_attachment(request: Request, job: str) -> Response:
        """The scenario's expected results as a page to print and attach to a trial application."""
        asked = await what_if_job(request, job)
        if isinstance(asked, Response):
            return asked
        if asked["status"] != "done":
            return RedirectResponse(f"/hvad-hvis/{job}", status_code=303)
        result = asked["result"]
        months = len(result["municipalities"][0]["months"]) if result["municipalities"] else 0
        return page(request, "whatif_attachment.html", title=f"Bilag: {result['title']}", job=job, result=result, months=months,
                    words=whatif.scenario_in_words(asked["request"], catalog), cell=whatif.cell,
                    per_year=whatif.per_year, rule_name=lambda rule: whatif.rule_name(rule, catalog))

    @app.get("/hvad-hvis/{job}/resultat.csv")
    async def what_if_csv(request: Request, job: str) -> Response:
        """The scenario's numbers as the reporting service writes them in CSV."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        if not re.fullmatch(JOB, job):
            return no_what_if(request)
        try:
            answer = await request.app.state.http.get(
                f"{settings.reporting_url}/what-if/{job}",
                headers={"Authorization": f"Bearer {request.session['token']}", "Accept": "text/csv"})
        except httpx.HTTPError:
            return unavailable(request, "reporting")
        if answer.status_code == 404:
            return no_what_if(request)
        if answer.status_code != 200:
            return refused(request, answer.status_code, "reporting")
        if "content-disposition" not in answer.headers:  # not done yet: JSON, no file
            return RedirectResponse(f"/hvad-hvis/{job}", status_code=303)
        return Response(answer.content, media_type=answer.headers["content-type"],
                        headers={"Content-Disposition": answer.headers["content-disposition"]})

    async def reporting_trials(request: Request) -> dict[str, dict[str, Any]] | Response:
        """The reporting service's trials by id, or the page saying why not."""
        answers = await ask_all(request, [("reporting", f"{settings.reporting_url}/trials", {})])
        if isinstance(answers, Response):
            return answers
        return {t["id"]: t for t in sorted(answers[0], key=lambda t: (len(t["id"]), t["id"]))}

    async def what_if_job(request: Request, job: str) -> dict[str, Any] | Response:
        """A scenario asked, as the reporting service has it, or the page saying why not."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        if not re.fullmatch(JOB, job):
            return no_what_if(request)
        try:
            answer = await request.app.state.http.get(f"{settings.reporting_url}/what-if/{job}",
                                                      headers={"Authorization": f"Bearer {request.session['token']}"})
        except httpx.HTTPError:
            return unavailable(request, "reporting")
        if answer.status_code == 404:
            return no_what_if(request)
        if answer.status_code != 200:
            return refused(request, answer.status_code, "reporting")
        return answer.json()

    def what_if_page(request: Request, trials: dict[str, dict[str, Any]], form: dict[str, str], errors: dict[str, str],
                     status: int = 200) -> Response:
        return page(request, "whatif_form.html", status, title="Hvad hvis", trials=list(trials.values()), form=form,
                    errors=errors, effect_rows=whatif.effect_rows(form), EFFECT_CHOICES=whatif.EFFECTS,
                    modes=whatif.MODES, rules=sorted((r for r in catalog.rules.values() if r.kind == "obligation"),
                                                     key=lambda r: r.title))

    @app.get("/drift")
    async def operations(request: Request, genindlaest: int | None = None) -> Response:
        """The operator's page: per service its readiness, how far behind it is, its stale and
        failed cases; the catalog reload; the latest audit records of each service."""
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        if request.session.get("role") != ADMIN:
            return not_operator(request)
        urls = {"case": settings.case_url, "obligations": settings.obligations_url, "reporting": settings.reporting_url}
        try:
            states = await asyncio.gather(*(service_state(request.app.state.http, service, url, request.session["token"])
                                            for service, url in urls.items()))
        except SignedOut:
            return refused(request, 401, "obligations")
        audit = sorted(((state.service, record) for state in states for record in state.audit),
                       key=lambda item: item[1]["at"], reverse=True)
        return page(request, "operations.html", title="Drift", states=states, reloaded=genindlaest, audit=audit,
                    failed=[(state.service, case) for state in states for case in state.failed_cases])

    @app.post("/drift/katalog")
    async def reload_catalog(request: Request) -> Response:
        """The obligations service reads its catalog files again (the reporting service reads its
        catalog when it starts)."""
        if await checked_form(request) is None:
            return csrf_refused(request)
        if "token" not in request.session:
            return RedirectResponse("/log-ind", status_code=303)
        if request.session.get("role") != ADMIN:
            return not_operator(request)
        try:
            answer = await request.app.state.http.post(f"{settings.obligations_url}/catalog/reload",
                                                       headers={"Authorization": f"Bearer {request.session['token']}"})
        except httpx.HTTPError:
            return unavailable(request, "obligations")
        if answer.status_code == 422:
            return page(request, "problem.html", 422, title="Kataloget kunne ikke indlæses",
                        message="Opgavetjenesten afviste katalogfilerne, og bruger fortsat det hidtidige katalog: "
                                + answer.json().get("detail", ""))
        if answer.status_code != 202:
            return refused(request, answer.status_code, "obligations")
        return RedirectResponse(f"/drift?genindlaest={answer.json()['cases_to_reevaluate']}", status_code=303)

    async def ask_all(request: Request, asks: list[tuple[str, str, dict[str, Any]]],
                      case_id: str | None = None) -> list[Any] | Response:
        """The APIs' answers (JSON) to (service, URL, query) asks, asked at once with the user's
        token; or the page saying why not, for the first that failed."""
        headers = {"Authorization": f"Bearer {request.session['token']}"}
        answers = await asyncio.gather(*(request.app.state.http.get(url, params=params, headers=headers)
                                         for _, url, params in asks), return_exceptions=True)
        for (service, _, _), answer in zip(asks, answers):
            if isinstance(answer, httpx.HTTPError):
                return unavailable(request, service)
            if isinstance(answer, BaseException):
                raise answer
            if answer.status_code != 200:
                return refused(request, answer.status_code, service, case_id)
        return [answer.json() for answer in answers]

    def sign_in_page(request: Request, errors: dict[str, str], chosen: dict[str, str], status: int = 200) -> Response:
        return page(request, "sign_in.html", status, title="Log ind", errors=errors, chosen=chosen,
                    roles=SIGN_IN_ROLES, municipalities=sorted(municipalities().items(), key=lambda m: m[1]))

    def no_sign_in(request: Request) -> Response:
        how = ("Her logger man ind via identitetsudbyderen." if provider is not None else
               "Log ind via identitetsudbyderen kræver OIDC_CLIENT_ID, som ikke er sat.")
        return page(request, "problem.html", 404, title="Udviklingslogin er slået fra",
                    message="Tjenesterne bruger identitetsudbyderens nøgler (AUTH_JWKS_URL), så denne side udsteder "
                            "ingen udviklingsadgang. " + how)

    return app


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    user = request.session if "token" in request.session else None
    return templates.TemplateResponse(request, template, {"csrf": csrf_token(request), "user": user, **context},
                                      status_code=status)


def start_session(request: Request, token: str, role: str, municipality: str | None,
                  caseworker: str | None) -> Response:
    """The user signed in, on to their role's page. Every key anew, the CSRF token too: nothing of
    the signed-out session carries over."""
    request.session.clear()
    request.session.update(token=token, role=role, municipality=municipality, caseworker=caseworker,
                           csrf=secrets.token_urlsafe(32))
    return RedirectResponse(danish.HOME[role], status_code=303)


def sign_in_failed(request: Request, failed: SignInFailed) -> HTMLResponse:
    return page(request, "problem.html", failed.status, title="Log ind mislykkedes", message=failed.message)


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


def refused(request: Request, status: int, service: str, case_id: str | None = None) -> Response:
    """An API's refusal, in Danish; a refused token (expired, or signed with another key) signs out."""
    if status == 401:
        request.session.clear()
        return RedirectResponse("/log-ind", status_code=303)
    if service == "reporting" and status in (403, 404, 422):
        return page(request, "problem.html", status, **{
            403: {"title": "Ingen adgang", "message": "Evalueringstallene er for evaluatorer: din rolle giver ikke "
                                                       "adgang til dem."},
            404: {"title": "Forsøget findes ikke", "message": "Rapporteringstjenesten kender ikke forsøget."},
            422: {"title": "Sammenligningen kan ikke laves",
                  "message": "Rapporteringstjenesten kan ikke sammenligne med den valgte gruppe: en valgt kommune har "
                             "ingen borgere i data. Vælg andre kommuner, eller brug standardgruppen."}}[status])
    if status == 403 and case_id:
        why = ("Sagen hører under en kommune, du ikke arbejder for, så du kan ikke se den. "
               if request.session.get("role") == CASEWORKER else "Din rolle giver ikke adgang til sager. ")
        return page(request, "problem.html", 403, title="Ingen adgang til sagen",
                    message=why + "Sagsbehandlere ser sagerne i de kommuner, de arbejder for.")
    if status == 403:
        return page(request, "problem.html", 403, title="Ingen adgang",
                    message="Opgavetjenesten giver ikke din rolle eller kommune adgang til denne opgaveliste. "
                            "Opgavelister er for sagsbehandlere, i de kommuner de arbejder for.")
    if status == 404 and case_id:
        return no_case(request, case_id)
    if status == 404:
        return page(request, "problem.html", 404, title="Ikke fundet", message="Opgavetjenesten kender ikke det, du bad om.")
    if status == 410:
        return page(request, "problem.html", 410, title="Sagen er slettet",
                    message="Sagens oplysninger er slettet, så den kan ikke vises.")
    if status == 409:
        return page(request, "problem.html", 409, title="Sagens opgaver kunne ikke beregnes",
                    message="Opgavetjenesten kunne ikke beregne opgaverne for denne sag. Driften kan se fejlen.")
    if status == 422:
        return page(request, "problem.html", 422, title="Forespørgslen kunne ikke besvares",
                    message="Opgavetjenesten kan ikke svare for den valgte dato, fx fordi den ligger for langt ude "
                            "i fremtiden. Vælg en anden dato.")
    return unavailable(request, service)


def not_operator(request: Request) -> HTMLResponse:
    return page(request, "problem.html", 403, title="Ingen adgang",
                message="Driftssiden er for driftsansvarlige: din rolle giver ikke adgang til den.")


def no_case(request: Request, case_id: str) -> HTMLResponse:
    return page(request, "problem.html", 404, title="Sagen findes ikke", message=f"Der er ingen sag med id {case_id}.")


def unavailable(request: Request, service: str) -> HTMLResponse:
    name = {"case": "Sagstjenesten", "obligations": "Opgavetjenesten", "reporting": "Rapporteringstjenesten"}[service]
    return page(request, "problem.html", 502, title=f"{name} svarer ikke",
                message=f"{name} kunne ikke svare lige nu. Prøv igen om lidt.")


def no_what_if(request: Request) -> HTMLResponse:
    return page(request, "problem.html", 404, title="Scenariet findes ikke",
                message="Rapporteringstjenesten kender ikke dette scenarie. Start et nyt under Hvad hvis.")


def no_trial(request: Request, trial_id: str) -> HTMLResponse:
    return page(request, "problem.html", 404, title="Forsøget findes ikke",
                message=f"Der er intet forsøg {trial_id} i kataloget, eller en valgt sammenligningskommune findes ikke.")


def comparison_query(trial_id: str, codes: list[str]) -> dict[str, str] | None:
    """The reporting service's `comparison` for the chosen kommunekoder (none: its default
    group); None when one is not a kommune, or is one of the trial's own (not on the list)."""
    own = catalog.trials[trial_id].municipalities if trial_id in catalog.trials else []
    if any(code not in municipalities() or code in own for code in codes):
        return None
    return {"comparison": ",".join(dict.fromkeys(codes))} if codes else {}


def effects_in_danish(effects: list[dict[str, Any]]) -> list[str]:
    """fritager for: Revurdering af ledighedsydelse efter 12 af 18 måneder (LAS § 74 c)"""
    out = []
    for effect in effects:
        rule = catalog.rules.get(effect["rule"])
        named = f"{rule.title} ({rule.legal_reference})" if rule else effect["rule"]
        out.append(f"{danish.EFFECT_VERBS.get(effect['effect'], effect['effect'])}: {named}")
    return out


def monthly(rows: list[dict[str, Any]], unit: str) -> tuple[list[str], dict[str, list[float | None]], dict[str, list[str]]]:
    """A series' months in order, each group's values for the chart (None: suppressed or no
    data), and each month's cells as the table beside the chart shows them."""
    months = sorted({r["period"] for r in rows})
    by = {(r["group"], r["period"]): r for r in rows}
    values = {group: [by[(group, m)]["value"] if (group, m) in by else None for m in months]
              for group in ("trial", "comparison")}
    cells = {m: [shown(by.get((group, m)), unit) for group in ("trial", "comparison")] for m in months}
    return months, values, cells


def shown(row: dict[str, Any] | None, unit: str) -> str:
    """A number as the pages show it: suppressed, never a number; – where there is none."""
    if row is None or (row["value"] is None and not row["suppressed"]):
        return "–"
    return "undertrykt" if row["suppressed"] else danish.amount(row["value"], unit)


def evaluation_tables(rows: list[dict[str, Any]], metrics: dict[str, dict[str, Any]]) -> tuple[list, list]:
    """The group totals, a row per metric (and rule): trial group before and during, comparison
    group before and during; and the municipalities' own numbers, a row per municipality and metric."""
    order = list(metrics)

    def name(r: dict[str, Any]) -> str:
        return metrics[r["metric"]]["label_da"] + (f", {r['rule']}" if r["rule"] else "")

    def key(r: dict[str, Any]) -> tuple[int, str]:
        return order.index(r["metric"]) if r["metric"] in order else len(order), r["rule"] or ""

    cells = {(r["metric"], r["rule"], r["group"], r["period"], r["municipality"]): r for r in rows
             if r["metric"] != "did_estimate"}
    kinds = sorted({(r["metric"], r["rule"]) for r in rows if r["metric"] != "did_estimate"},
                   key=lambda k: key({"metric": k[0], "rule": k[1]}))
    totals = [(name({"metric": m, "rule": rule}), [shown(cells.get((m, rule, g, p, None)), metrics[m]["unit"])
                                                    for g in ("trial", "comparison") for p in ("baseline", "trial")])
              for m, rule in kinds]
    places = sorted({(r["group"], r["municipality"]) for r in rows if r["municipality"]},
                    key=lambda k: (k[0] != "trial", municipalities().get(k[1], k[1])))
    per_place = [(danish.kommune(code), name({"metric": m, "rule": rule}),
                  [shown(cells.get((m, rule, group, p, code)), metrics[m]["unit"]) for p in ("baseline", "trial")])
                 for group, code in places for m, rule in kinds if (m, rule, group, "trial", code) in cells]
    return totals, per_place


def as_of_date(dato: str | None) -> date | None:
    """The page's date: today unless one is asked for; None when it is not a date."""
    try:
        return date.fromisoformat(dato) if dato else date.today()
    except ValueError:
        return None


def invalid_date(request: Request) -> HTMLResponse:
    return page(request, "problem.html", 422, title="Ugyldig dato",
                message="Datoen skal skrives som år-måned-dag, fx 2020-03-01.")


def is_code(text: str) -> bool:
    """An id as `case.assigned` names a caseworker: never a CPR number."""
    try:
        TypeAdapter(Code).validate_python(text)
    except ValidationError:
        return False
    return True


app = create_app()
