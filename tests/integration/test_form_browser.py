"""Issue 15: the evaluation form rendered by headless Chromium, as an evaluator sees and prints it.
The screenshot and the A4 PDF are kept in test-artifacts/ (or $TEST_ARTIFACTS)."""

import os
import re
import shutil
import time
from pathlib import Path

from playwright import sync_api as playwright

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from tests.integration.test_reporting_service import BATCH, ly_citizens

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's; make test installs it
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


def offline_but(context, base: str) -> list[str]:
    """Refuses every request of the browser context but those to `base`, as a machine without
    the internet would; returns the list the refused URLs are added to."""
    refused: list[str] = []

    def only_base(route) -> None:
        if route.request.url.startswith(f"{base}/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_base)
    return refused


def test_the_form_in_chromium_is_danish_and_leaks_nothing_suppressed(tmp_path, serve):
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path}
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
            serve(reporting_app(lambda: reporting_bootstrap(ReportingSettings(**common)))) as reporting:
        # 6 in Aalborg, 3 in Thisted (their cells suppressed), 5 in Aarhus (the comparison group)
        batch = ly_citizens("aal", "851", 6) + ly_citizens("thi", "787", 3) + ly_citizens("aar", "751", 5)
        assert case.post("/events", json=batch, headers=BATCH).status_code == 201
        period = {"from": "2019-01-01", "to": "2020-12-31"}
        deadline = time.monotonic() + 60
        while len({r["municipality"] for r in reporting.get("/trials/T11/evaluation", params=period).json()["rows"]}) < 4 \
                or reporting.get("/status").json()["stale"]:
            assert time.monotonic() < deadline, "the reporting service did not catch up"
            time.sleep(0.2)
        rows = reporting.get("/trials/T11/evaluation", params=period).json()["rows"]
        assert any(r["municipality"] == "787" and r["suppressed"] for r in rows)

        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 1400})
                page.set_extra_http_headers({"Authorization": reporting.headers["Authorization"]})
                page.goto(f"{reporting.base_url}/trials/T11/form?from=2019-01-01&to=2020-12-31")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "form-T11.png"), full_page=True)
                page.emulate_media(media="print")
                pdf = page.pdf(format="A4")
                (ARTIFACTS / "form-T11.pdf").write_bytes(pdf)
                text = page.inner_text("body")
                chart = page.locator("svg polyline").count()
            finally:
                browser.close()
    assert pdf.startswith(b"%PDF")
    for danish in ("7. Forsøgets resultater", "Forsøgskommuner, før forsøget", "Sammenligningsgruppe, under forsøget",
                   "Frigjorte sagsbehandlertimer", "Aalborg (851)", "Thisted (787)", "Aarhus (751)",
                   "Forskel-i-forskelle", "forsøget begynder"):
        assert danish in text, danish
    assert re.search(r"Andel afgået til job: (fra før til under forsøget (steg|faldt) den [\d.,]+ procentpoint i "
                     r"forsøgskommunerne og .* i sammenligningsgruppen; forskel-i-forskelle .*95 %-konfidensinterval "
                     r"fra −?[\d.,]+ til −?[\d.,]+ procentpoint|kan ikke)", text)
    assert "seed" not in text and "felt" not in text
    assert not re.search(r"\(\s*[1-4] borgere\)", text)  # no count under 5 shown
    assert chart >= 2
