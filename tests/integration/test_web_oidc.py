"""Issue 18, production sign-in: the web service signs users in through the identity provider with
OpenID Connect's authorization code flow and PKCE (S256), against a real provider served over HTTP
(tests/oidc_provider.py), whose access tokens the real case and obligations services (embedded,
SQLite) accept: they run with AUTH_JWKS_URL and AUTH_ISSUER pointing at it.

Aalborg (851), as of 1 March 2020 (as in test_web.py): aal-overdue, from 2 January 2020, its
jobsamtale due 16 February 2020; aal-due, from 30 January 2020, assigned to cw-7; and aar-overdue
in Aarhus (751), which no Aalborg page shows."""

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright import sync_api as playwright
from pydantic import SecretStr

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.web.app import create_app as web_app
from services.web.settings import WebSettings
from shared.municipalities import municipalities
from tests.conftest import LiveServer
from tests.events import benefit_started, event, opened
from tests.infra import free_port
from tests.integration.test_form_browser import ARTIFACTS, CHROMIUM
from tests.integration.test_obligations_service import BATCH, wait_for
from tests.integration.test_web import accessible
from tests.oidc_provider import Provider, User

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-oidc")]

AS_OF = "2020-03-01"
CLIENT_ID, CLIENT_SECRET = "frisag-web", "a client secret with / and : in it"
CASES = {"aal-overdue": ("851", "2020-01-02", "010190-1234"), "aal-due": ("851", "2020-01-30", "020190-1234"),
         "aar-overdue": ("751", "2020-01-02", "030190-1234")}


@dataclass
class Frisag:
    provider: Provider
    settings: WebSettings  # the web service's
    base: str
    data_dir: Path  # the web service's


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def s256(verifier: str) -> str:
    """RFC 7636's S256, computed here: BASE64URL(SHA256(ASCII(verifier))), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


@pytest.fixture(scope="module")
def frisag(tmp_path_factory) -> Iterator[Frisag]:
    tmp_path = tmp_path_factory.mktemp("web-oidc")
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}"
    provider = Provider(CLIENT_ID, f"{base}/log-ind/retur", client_secret=CLIENT_SECRET)
    issuing = LiveServer(provider.app)
    provider.issuer = f"http://localhost:{issuing.port}"  # another site than the web service's, as in production
    with issuing:
        apis = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path / "apis",
                "auth_jwks_url": f"{provider.issuer}/jwks", "auth_issuer": provider.issuer}
        jobcenter = provider.access_token(User("test-jobcenter", ["integration"], sorted(municipalities())))
        reader = provider.access_token(User("test-reader", ["caseworker"], ["851", "751"]))
        with LiveServer(case_app(lambda: case_bootstrap(CaseSettings(**apis))), token=jobcenter) as case, \
                LiveServer(obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**apis))), token=reader) as obligations:
            events = [e for case_id, (code, day, cpr) in CASES.items()
                      for e in (opened(case_id, municipality=code, date=day, cpr=cpr), benefit_started(case_id, date=day))]
            events.append(event("case.assigned", "aal-due", caseworker="cw-7", date="2020-01-30"))
            assert case.post("/events", json=events, headers=BATCH).status_code == 201
            for case_id in CASES:
                assert wait_for(lambda: obligations.get(f"/cases/{case_id}/obligations",
                                                        params={"as_of": AS_OF}).status_code == 200)
            settings = WebSettings(data_dir=tmp_path / "web", auth_jwks_url=f"{provider.issuer}/jwks",
                                   auth_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                                   oidc_client_secret=CLIENT_SECRET, web_base_url=base,
                                   case_url=str(case.base_url).rstrip("/"),
                                   obligations_url=str(obligations.base_url).rstrip("/"))
            with LiveServer(web_app(settings), token=None, port=web_port):
                yield Frisag(provider, settings, base, tmp_path / "web")


@pytest.fixture
def provider(frisag) -> Iterator[Provider]:
    """The provider, as each test finds it: the default user, nothing asked yet; put back after."""
    provider = frisag.provider
    provider.user, provider.access_token_lifetime, provider.deny, provider.id_token_nonce = User(), 300, False, None
    provider.authorizations.clear(), provider.exchanges.clear(), provider.ended.clear()
    yield provider
    provider.client_secret = CLIENT_SECRET


@pytest.fixture
def web(frisag, provider) -> Iterator[httpx.Client]:
    """A browser, as far as the web service and the provider see it: cookies of its own, signed out."""
    with httpx.Client(base_url=frisag.base, timeout=30) as client:
        yield client


def sign_in(web: httpx.Client) -> httpx.Response:
    """Through the provider and back, every redirect followed: the page the user lands on."""
    return web.get("/log-ind", follow_redirects=True)


def to_the_provider(web: httpx.Client) -> str:
    """The authorization request /log-ind sends the browser to."""
    answer = web.get("/log-ind")
    assert answer.status_code == 303
    return answer.headers["location"]


def signed_out(web: httpx.Client) -> bool:
    answer = web.get("/opgaver")
    return answer.status_code == 303 and answer.headers["location"] == "/log-ind"


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_a_caseworker_signs_in_at_the_identity_provider_and_sees_the_worklist_the_apis_answer(frisag, web, provider):
    assert signed_out(web)
    landed = sign_in(web)
    assert (landed.status_code, landed.url) == (200, httpx.URL(f"{frisag.base}/opgaver"))
    worklist = web.get("/opgaver", params={"dato": AS_OF})
    assert worklist.status_code == 200 and "<title>Mine opgaver – Frisag</title>" in worklist.text
    assert "Sagsbehandler, Aalborg (851)" in worklist.text  # from the access token's claims
    assert "aal-overdue" in worklist.text and "aal-due" in worklist.text and "aar-overdue" not in worklist.text
    assert "16. februar 2020" in worklist.text
    case = web.get("/sager/aal-overdue", params={"dato": AS_OF})
    assert case.status_code == 200 and "010190-****" in case.text
    assert web.get("/sager/aar-overdue", params={"dato": AS_OF}).status_code == 403  # the APIs' rules, unchanged

    # the session holds the access token encrypted: the browser cannot read it, nor the claims
    cookie = web.cookies["frisag_session"]
    opened_up = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
    assert b"eyJ" not in opened_up and b"caseworker" not in opened_up and b"851" not in opened_up


def test_a_caseworker_of_several_kommuner_sees_the_worklist_of_the_lowest_code(frisag, web, provider):
    """There is no choosing a kommune yet: Aarhus (751) before Aalborg (851). The worklist names it
    to the API, whose default is a token's only kommune."""
    provider.user = User("both@jobcenter.dk", ["caseworker"], ["851", "751"])  # no id: the kommune's tasks
    assert sign_in(web).url.path == "/opgaver"
    worklist = web.get("/opgaver", params={"dato": AS_OF})
    assert worklist.status_code == 200 and "Sagsbehandler, Aarhus (751)" in worklist.text
    assert "aar-overdue" in worklist.text and "aal-overdue" not in worklist.text


def test_my_tasks_are_those_assigned_to_my_username_at_the_provider_else_to_my_subject(frisag, web, provider):
    """aal-due is assigned to cw-7, aal-overdue to nobody. Signed in as cw-7 (the provider's
    username, or its subject when the username is not an id), the caseworker's own tasks are
    aal-due's; a user known by neither as an id (the default: anne@aalborg.dk) sees the kommune's."""
    for user in (User("f3a9-0c1d", ["caseworker"], ["851"], username="cw-7"),
                 User("cw-7", ["caseworker"], ["851"], username="Anne Hansen")):
        provider.user = user
        assert sign_in(web).url.path == "/opgaver"
        worklist = web.get("/opgaver", params={"dato": AS_OF})
        assert worklist.status_code == 200
        assert "aal-due" in worklist.text and "aal-overdue" not in worklist.text, user
        web.cookies.clear()


def test_the_authorization_request_carries_an_s256_challenge_of_the_verifier_the_code_is_exchanged_with(frisag, web,
                                                                                                          provider):
    asked = query(to_the_provider(web))
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID and asked["scope"] == "openid"
    assert asked["redirect_uri"] == f"{frisag.base}/log-ind/retur"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32 and asked["state"] != asked["nonce"]
    again = query(to_the_provider(web))  # each sign-in its own
    assert {again["state"], again["nonce"], again["code_challenge"]}.isdisjoint(
        {asked["state"], asked["nonce"], asked["code_challenge"]})

    assert sign_in(web).url.path == "/opgaver"
    (exchange,) = provider.exchanges
    verifier = exchange["code_verifier"]
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)  # RFC 7636, 4.1
    assert s256(verifier) == provider.authorizations[-1]["code_challenge"]
    assert verifier not in provider.authorizations[-1].values()  # the verifier itself never went by the browser
    assert exchange["grant_type"] == "authorization_code" and exchange["redirect_uri"] == f"{frisag.base}/log-ind/retur"
    # a confidential client: client_secret_basic, id and secret form-encoded first (RFC 6749, 2.3.1)
    expected = base64.b64encode(b"frisag-web:a%20client%20secret%20with%20%2F%20and%20%3A%20in%20it").decode()
    assert exchange["authorization"] == f"Basic {expected}" and "client_id" not in exchange


def test_a_public_client_names_itself_in_the_token_request(frisag, provider, serve, tmp_path):
    provider.client_secret = None
    settings = frisag.settings.model_copy(update={"oidc_client_secret": None})
    port = free_port()
    with serve(web_app(settings.model_copy(update={"web_base_url": f"http://127.0.0.1:{port}"})), token=None,
               port=port) as web:
        provider.redirect_uri = f"http://127.0.0.1:{port}/log-ind/retur"
        try:
            assert sign_in(web).url.path == "/opgaver"
        finally:
            provider.redirect_uri = f"{frisag.base}/log-ind/retur"
    (exchange,) = provider.exchanges
    assert exchange["client_id"] == CLIENT_ID and exchange["authorization"] == ""


def test_a_code_bound_to_another_challenge_is_refused_by_the_provider_and_nothing_is_signed_in(frisag, web, provider):
    """The code is asked for with an attacker's challenge: the web service's verifier does not
    match it, so the provider refuses the exchange. Were the verifier not sent, it would refuse too."""
    asked = query(to_the_provider(web))
    forged = {**asked, "code_challenge": s256("an-attackers-verifier-" + "x" * 30)}
    back = httpx.get(f"{frisag.provider.issuer}/authorize?{urlencode(forged)}")
    assert back.status_code == 302 and back.headers["location"].startswith(f"{frisag.base}/log-ind/retur?")
    answer = web.get(back.headers["location"])
    assert answer.status_code == 400
    assert "Log ind mislykkedes" in answer.text and "ville ikke udstede en adgang" in answer.text
    (exchange,) = provider.exchanges
    assert exchange["code_verifier"] and s256(exchange["code_verifier"]) == asked["code_challenge"]
    assert signed_out(web)


def test_an_answer_with_another_state_or_none_is_refused_with_400(frisag, web, provider):
    for tampered in ("another-state", None):
        asked = query(to_the_provider(web))
        back = query(httpx.get(f"{frisag.provider.issuer}/authorize?{urlencode(asked)}").headers["location"])
        assert back["state"] == asked["state"]
        answer = web.get("/log-ind/retur", params={"code": back["code"]} | ({"state": tampered} if tampered else {}))
        assert answer.status_code == 400 and "Log ind mislykkedes" in answer.text
        assert "hører ikke til et log ind, der er startet her" in answer.text
        assert provider.exchanges == []  # the code was never exchanged
        assert signed_out(web)
    # nor is an answer taken when no sign-in was started from this browser
    with httpx.Client(base_url=frisag.base) as stranger:
        answer = stranger.get("/log-ind/retur", params={"code": "a-code", "state": "a-state"})
        assert answer.status_code == 400 and "hører ikke til et log ind" in answer.text


def test_an_answer_is_taken_once(frisag, web, provider):
    location = to_the_provider(web)
    back = httpx.get(location).headers["location"]
    assert web.get(back).headers["location"] == "/opgaver"
    web.post("/log-ud", data={"csrf": csrf(web.get("/opgaver", params={"dato": AS_OF}).text)})
    answer = web.get(back)  # the same code and state again
    assert answer.status_code == 400 and signed_out(web)


def test_an_id_token_with_a_forged_or_replayed_nonce_is_refused(frisag, web, provider):
    assert sign_in(web).url.path == "/opgaver"
    earlier = provider.authorizations[-1]["nonce"]  # an ID token made for that sign-in, replayed
    web.cookies.clear()
    for nonce in ("forged", earlier):
        provider.id_token_nonce = nonce
        answer = sign_in(web)
        assert answer.status_code == 400 and "Log ind mislykkedes" in answer.text
        assert "hørte ikke til dette log ind" in answer.text, nonce
        assert signed_out(web)


def test_a_refusal_at_the_provider_is_said_in_danish(frisag, web, provider):
    provider.deny = True
    answer = sign_in(web)
    assert answer.status_code == 400 and answer.url.path == "/log-ind/retur"
    assert "Identitetsudbyderen loggede dig ikke ind (access_denied)." in answer.text and "Traceback" not in answer.text
    assert signed_out(web)
    state = query(to_the_provider(web))["state"]  # an error that is no error code is not repeated
    answer = web.get("/log-ind/retur", params={"state": state, "error": "<b>Ring til os på 12345678</b>"})
    assert answer.status_code == 400 and "Identitetsudbyderen loggede dig ikke ind." in answer.text
    assert "12345678" not in answer.text


def test_a_provider_that_does_not_answer_or_is_another_issuer_is_said_in_danish(frisag, serve):
    for issuer, said in ((f"http://127.0.0.1:{free_port()}", "Identitetsudbyderen svarer ikke lige nu"),
                         # the same provider by another name: its configuration names the issuer it is
                         (frisag.provider.issuer.replace("localhost", "127.0.0.1"), "passer ikke til den udsteder")):
        with serve(web_app(frisag.settings.model_copy(update={"auth_issuer": issuer})), token=None) as web:
            answer = web.get("/log-ind")
            assert answer.status_code == 502 and "Log ind mislykkedes" in answer.text and said in answer.text, issuer


@pytest.mark.parametrize("user, landing", [(User("eva", ["evaluator"], []), "/forsoeg"),
                                           (User("ops", ["admin"], []), "/drift")])
def test_each_role_lands_on_its_page_and_one_without_a_frisag_role_is_refused(frisag, web, provider, user, landing):
    provider.user = user
    answer = web.get(to_the_provider(web), follow_redirects=False)
    assert web.get(answer.headers["location"]).headers["location"] == landing
    web.cookies.clear()
    provider.user = User("system", ["integration"], ["851"])  # a system's role, no person's
    answer = sign_in(web)
    assert answer.status_code == 403 and "ingen rolle i Frisag" in answer.text and signed_out(web)


def test_the_operators_page_names_whom_the_audit_log_records_by_username_beside_sub(frisag, web, provider):
    provider.user = User("4f0c8a1e-opaque-id", ["admin"], [], username="dorthe.drift")
    assert sign_in(web).url.path == "/drift"
    page = web.get("/drift").text  # its first visit read each service's log: now among the latest records
    # one record in each service that answers (case and obligations: no reporting service runs here)
    assert page.count('<td data-title="Hvem">dorthe.drift (4f0c8a1e-opaque-id)</td>') == 2


def test_with_the_identity_provider_the_development_sign_in_is_not_offered(frisag, web, provider):
    asked = web.get("/log-ind")  # straight on to the provider: no form
    assert asked.status_code == 303 and asked.headers["location"].startswith(f"{frisag.provider.issuer}/authorize?")
    assert sign_in(web).url.path == "/opgaver"
    form = csrf(web.get("/opgaver", params={"dato": AS_OF}).text)
    answer = web.post("/log-ind", data={"csrf": form, "role": "admin", "municipality": "851"})
    assert answer.status_code == 404 and "Udviklingslogin er slået fra" in answer.text
    assert web.get("/drift").status_code == 403  # still the caseworker the provider signed in: no admin token minted
    assert not (frisag.data_dir / "auth").exists()  # nor any development key made to mint one with


def test_signing_out_clears_the_session_and_ends_the_providers(frisag, web, provider):
    assert sign_in(web).url.path == "/opgaver"
    answer = web.post("/log-ud", data={"csrf": csrf(web.get("/opgaver", params={"dato": AS_OF}).text)})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{frisag.provider.issuer}/logout?")
    cleared = answer.headers["set-cookie"]
    assert cleared.startswith("frisag_session=null;") and "expires=Thu, 01 Jan 1970" in cleared
    back = web.get(answer.headers["location"], follow_redirects=True)
    assert (back.status_code, back.url) == (200, httpx.URL(f"{frisag.base}/logget-ud"))
    assert "Du er logget ud" in back.text and 'href="/log-ind"' in back.text
    assert provider.ended == [{"client_id": CLIENT_ID, "post_logout_redirect_uri": f"{frisag.base}/logget-ud"}]
    assert signed_out(web)


def test_an_access_token_the_apis_no_longer_take_sends_the_user_to_sign_in_again(frisag, web, provider):
    """Expired 26 s before it is issued: within the 30 s leeway of the sign-in's check and the
    APIs', which it is past 5 s later."""
    provider.access_token_lifetime = -26
    assert sign_in(web).url.path == "/opgaver"
    time.sleep(5)
    answer = web.get("/opgaver", params={"dato": AS_OF})
    assert (answer.status_code, answer.headers["location"]) == (303, "/log-ind")
    assert signed_out(web)
    provider.access_token_lifetime = 300
    assert sign_in(web).url.path == "/opgaver"  # through the provider again


def test_production_needs_the_identity_provider_and_keeps_the_cookie_to_https(frisag, serve, tmp_path):
    production = frisag.settings.model_copy(update={"environment": "production",
                                                    "session_key": SecretStr("a-production-session-key-of-32-chars")})
    with serve(web_app(production), token=None) as web:
        answer = web.get("/log-ind")
        assert answer.status_code == 303
        attributes = {a.strip().split("=")[0].lower() for a in answer.headers["set-cookie"].split(";")}
        assert {"httponly", "samesite", "secure"} <= attributes
    with pytest.raises(ValueError, match="OIDC_CLIENT_ID"):
        WebSettings(environment="production", session_key="s" * 32, auth_jwks_url=f"{frisag.provider.issuer}/jwks",
                    auth_issuer=frisag.provider.issuer)


def test_in_chromium_the_session_cookie_comes_back_from_the_providers_site(frisag, provider):
    """The provider (localhost) is another site than the web service (127.0.0.1): its redirect back
    is a cross-site navigation, which carries the SameSite=Lax cookie holding the sign-in's state."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []

    def only_ours(route) -> None:  # no network but the web service and the provider
        if route.request.url.startswith((f"{frisag.base}/", f"{frisag.provider.issuer}/")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(java_script_enabled=False, locale="da-DK")
            context.route("**/*", only_ours)
            page = context.new_page()
            page.goto(f"{frisag.base}/opgaver?dato={AS_OF}")  # signed out: to /log-ind, the provider, and back
            assert page.url == f"{frisag.base}/opgaver"
            assert page.title() == "Mine opgaver – Frisag"
            assert "Sagsbehandler, Aalborg (851)" in page.locator("header").inner_text()
            page.get_by_role("button", name="Log ud").click()
            page.wait_for_url(f"{frisag.base}/logget-ud")  # through the provider and back
            assert page.title() == "Du er logget ud – Frisag"
            page.screenshot(path=str(ARTIFACTS / "web-signed-out.png"), full_page=True)
            accessible(page, frisag.base)
            assert len(provider.ended) == 1
            (cookie,) = context.cookies(frisag.base)  # the signed-out page's, with a CSRF token only
            with httpx.Client(base_url=frisag.base, cookies={cookie["name"]: cookie["value"]}) as same_cookie:
                assert signed_out(same_cookie)
        finally:
            browser.close()
    assert refused == []
