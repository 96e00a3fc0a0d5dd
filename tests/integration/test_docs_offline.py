"""Issue 18: each API's documentation works on a machine without internet (Swagger UI and ReDoc
served by the service itself, from the fastapi-offline package), and `/` says where it is.
Screenshots are kept in test-artifacts/ (or $TEST_ARTIFACTS)."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from playwright import sync_api as playwright

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from tests.integration.test_form_browser import ARTIFACTS, CHROMIUM, offline_but

# ReDoc's "API docs by Redocly" shows a logo from Redocly's CDN: the policy refuses it, ReDoc hides it
REDOCLY_LOGO = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates"


@contextmanager
def three_services(tmp_path, serve) -> Iterator[dict[str, httpx.Client]]:
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    apps = {"case": lambda: case_app(lambda: case_bootstrap(CaseSettings(**common))),  # first: it makes the stream
            "obligations": lambda: obligations_app(lambda: obligations_bootstrap(ObligationsSettings(**common))),
            "reporting": lambda: reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common)))}
    with ExitStack() as stack:
        yield {name: stack.enter_context(serve(app(), token=None)) for name, app in apps.items()}


def operations(client: httpx.Client) -> set[tuple[str, str, str]]:
    """(METHOD, path, operationId) of every operation in the service's OpenAPI: what the pages must show."""
    paths = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path, operation["operationId"])
            for path, methods in paths.items() for method, operation in methods.items()}


def test_the_root_links_to_the_docs_and_health(tmp_path, serve):
    with three_services(tmp_path, serve) as services:
        for name, client in services.items():
            answer = client.get("/")
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
            links = answer.json()
            assert links["service"] == client.get("/openapi.json").json()["info"]["title"]
            assert name in links["service"]
            assert client.get(links["health"]).json() == {"status": "ok"}
            assert client.get(links["ready"]).status_code in (200, 503)
            assert "swagger-ui" in client.get(links["docs"]).text
            assert "<redoc" in client.get(links["redoc"]).text
            assert client.get(links["openapi"]).json()["openapi"].startswith("3.")


@pytest.mark.slow
def test_docs_render_in_chromium_without_the_network(tmp_path, serve):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with three_services(tmp_path, serve) as services, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, client in services.items():
                expected = operations(client)
                assert len(expected) >= 5
                base = str(client.base_url).rstrip("/")
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                left = offline_but(context, base)  # requests for anywhere but the service: refused
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda message: message.type == "error" and errors.append(message.text))
                page.on("pageerror", lambda error: errors.append(str(error)))

                page.goto(f"{base}/docs")
                # the page's policy forbids eval: wait with locators, not wait_for_function
                page.locator(".opblock").nth(len(expected) - 1).wait_for(timeout=30_000)
                shown = page.locator(".opblock-summary").evaluate_all(
                    "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').innerText,"
                    " b.querySelector('.opblock-summary-path').dataset.path])")
                assert sorted(map(tuple, shown)) == sorted((m, p) for m, p, _ in expected), name
                assert page.title() == f"{client.get('/').json()['service']} - Swagger UI"
                page.screenshot(path=str(ARTIFACTS / f"docs-{name}.png"))

                page.goto(f"{base}/redoc")
                rendered = page.locator('[data-section-id*="operation/"]')  # each in the menu and as a section
                rendered.nth(2 * len(expected) - 1).wait_for(state="attached", timeout=30_000)
                sections = rendered.evaluate_all("all => all.map(e => e.dataset.sectionId.split('operation/').pop())")
                assert set(sections) == {operation_id for _, _, operation_id in expected}, name
                assert "/healthz" in page.inner_text("body")
                page.screenshot(path=str(ARTIFACTS / f"redoc-{name}.png"))
                context.close()

                assert left == [], f"{name}: the docs asked for {left}"
                assert [e for e in errors if REDOCLY_LOGO not in e] == [], name
        finally:
            browser.close()
