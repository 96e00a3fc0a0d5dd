"""Tokens shaped as Keycloak issues them from the shipped realm (deploy/keycloak/realm-frisag.json):
the claims are built from the realm file itself (its users, roles, client and client scopes with
their protocol mappers), as Keycloak's mappers fill them in, so the tests and the realm cannot
drift. Keycloak's own claims (`typ`, `azp`, `sid`, `scope`, ...) as its access and ID tokens carry
them; an ID token also its `nonce`, and `aud` the client."""

import json
import time
import uuid
from pathlib import Path
from typing import Any

REALM_FILE = Path(__file__).resolve().parents[1] / "deploy" / "keycloak" / "realm-frisag.json"
ACCESS, ID = "Bearer", "ID"  # Keycloak's `typ` of an access token, of an ID token


def realm() -> dict[str, Any]:
    return json.loads(REALM_FILE.read_text())


def claims(realm: dict[str, Any], issuer: str, client_id: str, username: str, typ: str = ACCESS,
           lifetime: int = 300) -> dict[str, Any]:
    """What Keycloak signs for `username` signing in through `client_id` (a client of the realm, or
    one it does not have: then a client with the realm's default client scopes and no mappers of
    its own, as a new client gets)."""
    user = next(u for u in realm["users"] if u["username"] == username)
    client = next((c for c in realm["clients"] if c["clientId"] == client_id),
                  {"clientId": client_id, "defaultClientScopes": realm["defaultDefaultClientScopes"]})
    scopes = [s for s in realm["clientScopes"] if s["name"] in client["defaultClientScopes"]]
    now, sid = int(time.time()), str(uuid.uuid4())
    token: dict[str, Any] = {"exp": now + lifetime, "iat": now, "jti": str(uuid.uuid4()), "iss": issuer,
                             "typ": typ, "azp": client_id, "sid": sid}
    if typ == ID:
        token |= {"aud": client_id, "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPj", "sub": user["id"]}
    else:
        in_scope = [s["name"] for s in scopes if s["attributes"].get("include.in.token.scope") == "true"]
        token["scope"] = " ".join(["openid", *in_scope])
    audiences: list[str] = []
    for mapper in [m for s in scopes for m in s["protocolMappers"]] + client.get("protocolMappers", []):
        config = mapper["config"]
        if config.get("id.token.claim" if typ == ID else "access.token.claim") != "true":
            continue
        kind = mapper["protocolMapper"]
        if kind == "oidc-sub-mapper":
            token["sub"] = user["id"]
        elif kind in ("oidc-usermodel-attribute-mapper", "oidc-usermodel-property-mapper"):
            values = _user_values(user, config["user.attribute"])
            if values:
                _put(token, config["claim.name"], values if config.get("multivalued") == "true" else values[0])
        elif kind == "oidc-full-name-mapper":
            _put(token, "name", f"{user['firstName']} {user['lastName']}")
        elif kind == "oidc-usermodel-realm-role-mapper":
            _put(token, config["claim.name"], sorted(_realm_roles(realm, user["realmRoles"])))
        elif kind == "oidc-usermodel-client-role-mapper":
            for role_client, roles in user.get("clientRoles", {}).items():
                _put(token, config["claim.name"].replace("${client_id}", role_client), sorted(roles))
        elif kind == "oidc-audience-resolve-mapper":  # the clients whose roles the user has, but the client itself
            audiences += [c for c in user.get("clientRoles", {}) if c != client_id]
        elif kind == "oidc-audience-mapper":
            audiences.append(config["included.client.audience"])
        elif kind == "oidc-acr-mapper":
            token["acr"] = "1"
    if typ == ACCESS and audiences:  # none: Keycloak leaves `aud` out; one: a string
        token["aud"] = audiences[0] if len(audiences) == 1 else audiences
    return token


def _user_values(user: dict[str, Any], name: str) -> list[Any]:
    if name in ("username", "email", "firstName", "lastName", "emailVerified"):
        return [user[name]] if name in user else []
    return list(user.get("attributes", {}).get(name, []))


def _realm_roles(realm: dict[str, Any], names: list[str]) -> set[str]:
    """The roles and the realm roles their composites hold."""
    defined = {r["name"]: r for r in realm["roles"]["realm"]}
    found: set[str] = set()
    for name in names:
        found.add(name)
        found |= _realm_roles(realm, defined[name].get("composites", {}).get("realm", []))
    return found


def _put(token: dict[str, Any], claim: str, value: Any) -> None:
    """A claim at a dotted name, as Keycloak nests it (`realm_access.roles`)."""
    *path, last = claim.split(".")
    for name in path:
        token = token.setdefault(name, {})
    token[last] = value
