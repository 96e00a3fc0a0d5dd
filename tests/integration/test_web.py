"""Issue 18, the web service's first slice: a caseworker signs in (development sign-in) and sees
their worklist, served by the real case and obligations services (embedded, SQLite) over HTTP,
in Debian's Chromium with JavaScript off and no network but the web service. Screenshots are kept
in test-artifacts/ (or $TEST_ARTIFACTS).

Aalborg (851), as of 1 March 2020, hand-computed from the catalog: two citizens on
ledighedsydelse, whose first jobsamtale falls 45 days after the benefit starts and whose LAS § 74 c
re-assessment (12 months on) T11 waives in Aalborg:
- aal-overdue, from 2 January 2020: jobsamtale due 16 February 2020, 14 days overdue;
  LAS-74c due 1 January 2021, waived by T11;
- aal-due, from 30 January 2020: jobsamtale due 15 March 2020, due from 1 March (14 days before),
  assigned to caseworker cw-7;
and aar-overdue in Aarhus (751), which no Aalborg page shows. In Thisted (787, in T11 too), two
citizens whose LAS-74c (365 days after the benefit starts) T11 waived on 1 and 2 March 2019: the
worklist lists exemptions of tasks due from 365 days before its date on, so the second only."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from playwright import sync_api as playwright

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.web.app import create_app as web_app
from services.web.settings import WebSettings
from shared.auth import development_token
from shared.municipalities import municipalities
from tests.events import benefit_started, event, opened
from tests.infra import free_port
from tests.integration.test_form_browser import ARTIFACTS, CHROMIUM, offline_but
from tests.integration.test_obligations_service import BATCH, wait_for

AS_OF = "2020-03-01"
CASES = {"aal-overdue": ("851", "2020-01-02", "010190-1234"), "aal-due": ("851", "2020-01-30", "020190-1234"),
         "aar-overdue": ("751", "2020-01-02", "030190-1234"), "thi-before": ("787", "2018-03-01", "040190-1234"),
         "thi-edge": ("787", "2018-03-02", "050190-1234")}


@contextmanager
def frisag(tmp_path, serve) -> Iterator[tuple[httpx.Client, str, WebSettings]]:
    """The case and obligations services and the web service, as make run has them: the APIs
    accept the development key under `tmp_path`, with which the web service signs users in. The
    cases above posted and derived. Yields a client of the web service, its address and settings."""
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path, "auth_jwks_url": None}
    api = CaseSettings(**common)
    jobcenter = development_token(api, "test-jobcenter", ["integration"], sorted(municipalities()))
    reader = development_token(api, "test-reader", ["caseworker"], ["851", "751", "787"])
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common))), token=jobcenter) as case, \
            serve(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common))), token=reader) as obligations:
        events = [e for case_id, (code, day, cpr) in CASES.items()
                  for e in (opened(case_id, municipality=code, date=day, cpr=cpr), benefit_started(case_id, date=day))]
        events.append(event("case.assigned", "aal-due", caseworker="cw-7", date="2020-01-30"))
        assert case.post("/events", json=events, headers=BATCH).status_code == 201
        for case_id in CASES:
            assert wait_for(lambda: obligations.get(f"/cases/{case_id}/obligations", params={"as_of": AS_OF}).status_code == 200)
        settings = WebSettings(data_dir=tmp_path, auth_jwks_url=None, obligations_url=str(obligations.base_url).rstrip("/"),
                               case_url=str(case.base_url).rstrip("/"))
        with serve(web_app(settings), token=None) as web:
            yield web, str(web.base_url).rstrip("/"), settings


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(web: httpx.Client, **fields: str) -> httpx.Response:
    return web.post("/log-ind", data={"csrf": csrf(web.get("/log-ind").text), **fields})


@pytest.mark.slow
def test_an_aalborg_caseworker_sees_the_overdue_jobsamtale_first_and_the_waiver_under_t11(tmp_path, serve):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with frisag(tmp_path, serve) as (_, base, _), playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # the pages work without JavaScript, and load nothing from anywhere but the web service
            context = browser.new_context(java_script_enabled=False, locale="da-DK",
                                          viewport={"width": 1280, "height": 900})
            elsewhere = offline_but(context, base)
            page = context.new_page()
            page.goto(f"{base}/opgaver")
            assert page.url == f"{base}/log-ind"
            assert page.title() == "Log ind – Frisag"
            page.screenshot(path=str(ARTIFACTS / "web-sign-in.png"), full_page=True)
            page.get_by_label("Sagsbehandler", exact=True).check()
            page.get_by_label("Kommune").select_option("851")
            page.get_by_role("button", name="Log ind").click()
            assert page.url == f"{base}/opgaver"
            page.get_by_label("Pr. dato").fill(AS_OF)
            page.get_by_role("button", name="Vis").click()
            assert page.url == f"{base}/opgaver?dato={AS_OF}"
            page.screenshot(path=str(ARTIFACTS / "web-worklist.png"), full_page=True)

            assert page.title() == "Mine opgaver – Frisag"
            assert "Sagsbehandler, Aalborg (851)" in page.locator("header").inner_text()
            assert "pr. 1. marts 2020" in page.locator("main").inner_text()
            tasks = [row.split("\t") for row in page.locator("#opgaver tbody tr").all_inner_texts()]
            assert [row[0] for row in tasks] == ["aal-overdue", "aal-due"]  # nearest due first
            assert tasks[0][1:] == ["Individuel jobsamtale i kontaktforløbet",
                                    "LAB (LBK 1342/2016) kontaktforløb; LAB 2019 §§ 31-32",
                                    "16. februar 2020", "14", "Overskredet", "–"]
            assert tasks[1][3:6] == ["15. marts 2020", "0", "Aktuel"]
            waived = [row.split("\t") for row in page.locator("#fritaget tbody tr").all_inner_texts()]
            assert waived[0][:4] == ["aal-overdue", "Revurdering af ledighedsydelse efter 12 af 18 måneder",
                                     "LAS § 74 c", "1. januar 2021"]
            assert waived[0][4].startswith("T11: ")
            assert {row[0] for row in waived} == {"aal-overdue", "aal-due"}
            counts = dict(row.split("\t") for row in page.locator("#antal tbody tr").all_inner_texts())
            assert (counts["Overskredet"], counts["Aktuel"], counts["Fritaget"]) == ("1", "1", "2")
            assert "aar-overdue" not in page.locator("main").inner_text()

            page.get_by_role("button", name="Log ud").click()
            assert page.url == f"{base}/log-ind"
            page.goto(f"{base}/opgaver")
            assert page.url == f"{base}/log-ind"  # the session is gone
            assert elsewhere == []
            context.close()
        finally:
            browser.close()


def test_without_sign_in_or_the_csrf_token_nothing_is_shown_or_done(tmp_path, serve):
    with frisag(tmp_path, serve) as (web, _, _):
        answer = web.get("/opgaver")
        assert (answer.status_code, answer.headers["location"]) == (303, "/log-ind")
        form = web.get("/log-ind")
        (cookie,) = form.headers.get_list("set-cookie")
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert cookie.startswith("frisag_session=") and {"httponly", "samesite"} <= attributes
        assert "samesite=lax" in cookie.lower() and "secure" not in attributes  # development: plain HTTP

        chosen = {"role": "caseworker", "municipality": "851"}
        for refused in ({}, {"csrf": ""}, {"csrf": csrf(form.text) + "x"}):
            answer = web.post("/log-ind", data={**refused, **chosen})
            assert answer.status_code == 403 and "Formularen blev afvist" in answer.text
        assert web.get("/opgaver").status_code == 303  # still signed out

        assert sign_in(web, **chosen).headers["location"] == "/opgaver"
        worklist = web.get("/opgaver", params={"dato": AS_OF})
        assert worklist.status_code == 200 and "aal-overdue" in worklist.text
        answer = web.post("/log-ud", data={"csrf": csrf(form.text)})  # the token from before signing in
        assert answer.status_code == 403
        assert web.get("/opgaver", params={"dato": AS_OF}).status_code == 200  # still signed in
        answer = web.post("/log-ud", data={"csrf": csrf(worklist.text)})
        assert (answer.status_code, answer.headers["location"]) == (303, "/log-ind")
        assert web.get("/opgaver").status_code == 303


def test_what_the_apis_refuse_is_said_in_danish(tmp_path, serve):
    with frisag(tmp_path, serve) as (web, _, settings):
        answer = sign_in(web, role="caseworker", municipality="999", caseworker="010190-1234")
        assert answer.status_code == 422
        assert "Vælg en kommune på listen." in answer.text and "må ikke være et CPR-nummer" in answer.text

        assert sign_in(web, role="evaluator", municipality="851").status_code == 303
        answer = web.get("/opgaver", params={"dato": AS_OF})  # the obligations service refuses an evaluator
        assert answer.status_code == 403 and "Ingen adgang" in answer.text and "Traceback" not in answer.text
        assert "Evaluator</span>" in answer.text  # as the development tokens have it: acting for no kommune

        assert sign_in(web, role="caseworker", municipality="787").status_code == 303
        thisted = web.get("/opgaver", params={"dato": AS_OF}).text
        waived = thisted.split('id="fritaget"')[1]
        assert "med frist fra 2. marts 2019" in thisted
        assert "2. marts 2019" in waived and "1. marts 2019" not in waived and "thi-edge" in waived

        # with a caseworker id: the cases assigned to them
        assert sign_in(web, role="caseworker", municipality="851", caseworker="cw-7").status_code == 303
        mine = web.get("/opgaver", params={"dato": AS_OF}).text
        assert "aal-due" in mine and "aal-overdue" not in mine and "sager tildelt cw-7" in mine

        assert sign_in(web, role="caseworker", municipality="851").status_code == 303
        answer = web.get("/opgaver", params={"dato": "2999-01-01"})  # beyond what the API answers for
        assert answer.status_code == 422 and "Vælg en anden dato" in answer.text
        answer = web.get("/opgaver", params={"dato": "1. marts"})
        assert answer.status_code == 422 and "Ugyldig dato" in answer.text

        # a token the APIs do not accept (here signed with another development key) signs the user out
        with serve(web_app(settings.model_copy(update={"data_dir": tmp_path / "another"})), token=None) as other:
            assert sign_in(other, role="caseworker", municipality="851").status_code == 303
            answer = other.get("/opgaver", params={"dato": AS_OF})
            assert (answer.status_code, answer.headers["location"]) == (303, "/log-ind")
            assert "Log ud" not in other.get("/log-ind").text  # the session is gone


def test_no_development_sign_in_with_the_identity_providers_keys(tmp_path, serve, issuer):
    settings = WebSettings(environment="production", session_key="a-production-session-key", data_dir=tmp_path,
                           auth_jwks_url=issuer.jwks_url)
    with serve(web_app(settings), token=None) as web:
        form = web.get("/log-ind")
        assert form.status_code == 404 and "Udviklingslogin er slået fra" in form.text
        assert "secure" in {a.strip().lower() for a in form.headers["set-cookie"].split(";")}  # production: HTTPS only
    with pytest.raises(ValueError, match="SESSION_KEY"):
        WebSettings(environment="production", auth_jwks_url=issuer.jwks_url)


def test_an_api_that_is_down_or_answers_404_is_said_in_danish(tmp_path, serve):
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path, "auth_jwks_url": None}
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common))), token=None) as case:
        # the case service has no worklist: a real 404 where the obligations service should be; then nothing at all
        for url, status, said in ((str(case.base_url).rstrip("/"), 404, "Ikke fundet"),
                                  (f"http://127.0.0.1:{free_port()}", 502, "Opgavetjenesten svarer ikke")):
            with serve(web_app(WebSettings(data_dir=tmp_path, auth_jwks_url=None, obligations_url=url)), token=None) as web:
                assert sign_in(web, role="caseworker", municipality="851").status_code == 303
                answer = web.get("/opgaver", params={"dato": AS_OF})
                assert answer.status_code == status and said in answer.text, url
                assert "Traceback" not in answer.text and "problem" not in answer.text
