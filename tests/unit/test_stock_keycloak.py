"""Issue 19, item 6: a stock Keycloak token is accepted as Keycloak shapes it (`aud: "account"` with
Frisag's client in `azp`, roles in `realm_access` or `resource_access.<client>`, a single-valued
user attribute), an ID token is not, nor one naming no holder; and the README's Keycloak snippet
names the realm file and settings that exist."""

import copy
import json
import re
from pathlib import Path

import pytest

from services.web.settings import WebSettings
from shared.auth import ADMIN, CASEWORKER, EVALUATOR, INTEGRATION, ROLES, Authenticator, ClaimMapping
from shared.problems import Problem
from shared.settings import ServiceSettings
from tests.infra import Issuer
from tests.keycloak import ID, REALM_FILE, claims, realm

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "http://keycloak.example:8080/realms/frisag"
USERS = {"jobcenter-aalborg": ({INTEGRATION}, {"851", "751"}), "anne.sagsbehandler": ({CASEWORKER}, {"851"}),
         "erik.evaluator": ({EVALUATOR}, set()), "drift": ({ADMIN}, set())}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keycloak"))


def holder(issuer: Issuer, token_claims: dict, mapping: ClaimMapping = ClaimMapping()):
    return Authenticator(issuer.jwks_url, ISSUER, "frisag", mapping).principal(issuer.signed(token_claims))


def refusal(issuer: Issuer, token_claims: dict, mapping: ClaimMapping = ClaimMapping()) -> str:
    with pytest.raises(Problem) as refused:
        holder(issuer, token_claims, mapping)
    assert refused.value.status == 401
    return refused.value.detail


@pytest.mark.parametrize("username", USERS)
def test_each_example_user_of_the_realm_gets_its_rights(issuer, username):
    token = claims(realm(), ISSUER, "frisag", username)
    assert token["aud"] == "frisag" and token["typ"] == "Bearer"  # the realm's audience mapper
    assert "municipalities" not in token["realm_access"]  # its roles where Keycloak puts them
    principal = holder(issuer, token)
    assert (principal.roles, principal.municipalities) == USERS[username]
    user = next(u for u in realm()["users"] if u["username"] == username)
    assert (principal.subject, principal.username) == (user["id"], username)


def test_a_token_for_the_account_console_issued_to_frisags_client_is_accepted_and_another_clients_is_not(issuer):
    # Keycloak without an audience mapper: `aud` the account console, the client in `azp`
    stock = claims(realm(), ISSUER, "frisag", "anne.sagsbehandler") | {"aud": "account"}
    assert holder(issuer, stock).roles == {CASEWORKER}
    assert holder(issuer, stock | {"aud": ["realm-management", "account"]}).roles == {CASEWORKER}
    assert "azp" in refusal(issuer, stock | {"azp": "intranet"})
    assert "aud" in refusal(issuer, stock, ClaimMapping(accept_azp=False))
    # another client's token naming Frisag in its audience (a jobcenter system's own client)
    assert holder(issuer, stock | {"azp": "momentum", "aud": ["frisag", "account"]}).roles == {CASEWORKER}
    assert "azp" in refusal(issuer, {k: v for k, v in stock.items() if k != "aud"} | {"azp": "intranet"})


def test_roles_are_read_from_realm_roles_and_frisags_client_roles_only(issuer):
    shipped = realm()
    anne = next(u for u in shipped["users"] if u["username"] == "anne.sagsbehandler")
    as_client_roles = copy.deepcopy(shipped)
    user = next(u for u in as_client_roles["users"] if u["username"] == "anne.sagsbehandler")
    user["realmRoles"], user["clientRoles"] = ["default-roles-frisag"], {"frisag": [CASEWORKER]}
    token = claims(as_client_roles, ISSUER, "frisag", "anne.sagsbehandler")
    assert token["resource_access"] == {"frisag": {"roles": [CASEWORKER]}}
    assert holder(issuer, token).roles == {CASEWORKER}
    user["clientRoles"] = {"intranet": [ADMIN, CASEWORKER]}  # another application's roles grant nothing here
    assert holder(issuer, claims(as_client_roles, ISSUER, "frisag", "anne.sagsbehandler")).roles == set()
    assert holder(issuer, claims(as_client_roles, ISSUER, "frisag", "anne.sagsbehandler"),
                  ClaimMapping(client_id="intranet")).roles == {ADMIN, CASEWORKER}
    # a realm shared with other applications: its realm roles are theirs too
    realm_role = claims(shipped, ISSUER, "frisag", "anne.sagsbehandler")
    assert realm_role["realm_access"]["roles"] == sorted(["default-roles-frisag", "offline_access", "uma_authorization",
                                                          CASEWORKER])
    assert holder(issuer, realm_role, ClaimMapping(realm_roles=False)).roles == set()
    assert holder(issuer, realm_role | {"roles": [EVALUATOR]}).roles == {CASEWORKER, EVALUATOR}
    assert anne["attributes"]["municipalities"] == ["851"]


def test_a_single_valued_municipalities_attribute_is_one_kommunekode(issuer):
    token = claims(realm(), ISSUER, "frisag", "anne.sagsbehandler")
    assert token["municipalities"] == ["851"]  # the realm's mapper is multivalued: a list even of one
    assert holder(issuer, token | {"municipalities": "851"}).municipalities == {"851"}
    assert holder(issuer, token | {"kommuner": "751"}, ClaimMapping(municipalities_claim="kommuner")).municipalities \
        == {"751"}
    assert "municipalities" in refusal(issuer, token | {"municipalities": {"851": True}})
    assert "realm_access.roles" in refusal(issuer, token | {"realm_access": {"roles": {"caseworker": 1}}})


def test_an_id_token_is_refused(issuer):
    id_token = claims(realm(), ISSUER, "frisag", "drift", typ=ID)
    assert id_token["aud"] == "frisag"  # for the client, as any ID token: only its `typ` tells it apart
    assert "ID token" in refusal(issuer, id_token)


def test_a_token_naming_no_holder_is_refused_saying_why(issuer):
    lightweight = {k: v for k, v in claims(realm(), ISSUER, "frisag", "drift").items() if k != "sub"}
    assert "sub" in refusal(issuer, lightweight)


def test_the_readme_names_the_shipped_realm_and_settings_that_exist():
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("<!-- keycloak -->", 1)[1].split("<!-- /keycloak -->", 1)[0]
    shipped = json.loads(REALM_FILE.read_text())
    assert str(REALM_FILE.relative_to(ROOT)) in snippet and shipped["realm"] == "frisag"
    (client,) = shipped["clients"]
    named = dict(re.findall(r"^([A-Z_]+)=(\S+)$", snippet, re.MULTILINE))
    services, web = {f.upper() for f in ServiceSettings.model_fields}, {f.upper() for f in WebSettings.model_fields}
    assert {"AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_CLIENT_ID", "OIDC_CLIENT_ID"} <= set(named)
    assert set(named) <= services | web
    assert named["AUTH_ISSUER"].endswith(f"/realms/{shipped['realm']}")
    assert named["AUTH_JWKS_URL"] == f"{named['AUTH_ISSUER']}/protocol/openid-connect/certs"
    assert named["AUTH_CLIENT_ID"] == named["OIDC_CLIENT_ID"] == client["clientId"]
    audience_mapper = [m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
    assert [m["config"]["included.client.audience"] for m in audience_mapper] == [named["AUTH_AUDIENCE"]]
    web_settings = WebSettings(**{name.lower(): value for name, value in named.items() if name in web})
    assert client["redirectUris"] == [web_settings.redirect_uri]
    assert client["publicClient"] and client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert "kc.sh import --file" in snippet and "--import-realm" in snippet


def test_the_realm_has_frisags_roles_an_example_user_each_and_municipalities_only_administrators_set():
    shipped = realm()
    assert set(ROLES) <= {r["name"] for r in shipped["roles"]["realm"]}
    assert sorted(role for u in shipped["users"] for role in u["realmRoles"] if role in ROLES) == sorted(ROLES)
    (client,) = shipped["clients"]
    (mapper,) = [m for m in client["protocolMappers"] if m["config"].get("user.attribute") == "municipalities"]
    assert mapper["config"]["multivalued"] == mapper["config"]["access.token.claim"] == "true"
    (profile,) = shipped["components"]["org.keycloak.userprofile.UserProfileProvider"]
    (attribute,) = [a for a in json.loads(profile["config"]["kc.user.profile.config"][0])["attributes"]
                    if a["name"] == "municipalities"]
    # a user who could edit it would choose whose citizens to read
    assert attribute["multivalued"] and attribute["permissions"]["edit"] == ["admin"]
