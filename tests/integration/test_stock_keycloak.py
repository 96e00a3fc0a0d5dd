"""Issue 19, item 6, over HTTP: tokens shaped exactly as the shipped Keycloak realm issues them
(tests/keycloak.py builds them from deploy/keycloak/realm-frisag.json), signed with a realm key
whose JWKS is served over HTTP at Keycloak's path, as AUTH_JWKS_URL names it, are accepted by the
live case and reporting services with each example user's rights; the audit log records the
user's `preferred_username` beside its `sub`; an ID token and another client's token are refused."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from services.case.api import create_app as case_app
from services.case.settings import CaseSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from tests.conftest import LiveServer
from tests.events import benefit_started, opened
from tests.infra import Issuer, bearer, is_problem
from tests.keycloak import ID, claims, realm

SINGLE = {"content-type": "application/cloudevents+json"}
CERTS = "/realms/frisag/protocol/openid-connect/certs"


@dataclass
class Keycloak:
    issuer: str  # as Keycloak names a realm: its URL
    key: Issuer  # the realm's signing key

    def token(self, username: str, client_id: str = "frisag", typ: str = "Bearer") -> dict[str, str]:
        return bearer(self.key.signed(claims(realm(), self.issuer, client_id, username, typ)))


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory) -> Iterator[Keycloak]:
    key = Issuer(tmp_path_factory.mktemp("keycloak"))
    jwks = json.loads(Path(urlsplit(key.jwks_url).path).read_text())
    app = FastAPI()
    app.get(CERTS)(lambda: jwks)
    served = LiveServer(app)
    with served:
        yield Keycloak(f"{served.url}/realms/frisag", key)


@pytest.fixture(scope="module")
def services(tmp_path_factory, keycloak) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    common = {"database_url": None, "kafka_bootstrap_servers": None, "data_dir": tmp_path_factory.mktemp("services"),
              "auth_jwks_url": f"{keycloak.issuer}/protocol/openid-connect/certs", "auth_issuer": keycloak.issuer}
    with LiveServer(case_app(settings=CaseSettings(**common))) as case, \
            LiveServer(reporting_app(settings=ReportingSettings(**common))) as reporting:
        yield case, reporting


def test_each_example_user_has_its_roles_rights(services, keycloak):
    case, reporting = services
    jobcenter, anne = keycloak.token("jobcenter-aalborg"), keycloak.token("anne.sagsbehandler")
    erik, drift = keycloak.token("erik.evaluator"), keycloak.token("drift")
    for document in (opened("kc-1", municipality="851"), benefit_started("kc-1")):
        assert case.post("/events", json=document, headers={**SINGLE, **jobcenter}).status_code == 201
    is_problem(case.post("/events", json=opened("kc-2", municipality="101"), headers={**SINGLE, **jobcenter}), 403)
    is_problem(case.post("/events", json=opened("kc-3"), headers={**SINGLE, **anne}), 403)
    assert case.get("/cases/kc-1", headers=anne).status_code == 200
    for other in (erik, drift):
        is_problem(case.get("/cases/kc-1", headers=other), 403)
    assert reporting.get("/trials", headers=erik).status_code == 200
    is_problem(reporting.get("/trials", headers=anne), 403)

    records = case.get("/audit", headers=drift).json()["records"]
    anne_id = next(u["id"] for u in realm()["users"] if u["username"] == "anne.sagsbehandler")
    assert [(r["action"], r["subject"], r["username"], r["status"]) for r in records] == [
        ("read case history", anne_id, "anne.sagsbehandler", 200),
        ("read case history", next(u["id"] for u in realm()["users"] if u["username"] == "erik.evaluator"),
         "erik.evaluator", 403),
        ("read case history", next(u["id"] for u in realm()["users"] if u["username"] == "drift"), "drift", 403)]


def test_an_id_token_and_another_clients_token_are_refused(services, keycloak):
    case, reporting = services
    for token, why in ((keycloak.token("drift", typ=ID), "ID token"),
                       (keycloak.token("drift", client_id="intranet"), "aud")):
        assert why in is_problem(case.get("/audit", headers=token), 401)["detail"]
    assert why in is_problem(reporting.get("/trials", headers=keycloak.token("erik.evaluator", client_id="intranet")),
                             401)["detail"]
