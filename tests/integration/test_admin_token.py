"""Issue 18: `python -m services.admin token` mints a development token the services accept, and
refuses when the services check tokens against an identity provider's keys."""

import os
import subprocess
import sys

import jwt
import pytest

from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from shared.auth import CASEWORKER, development_keys
from tests.infra import bearer, is_problem

DAY = 86400


def admin_token(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """The command as a developer runs it, in an environment of exactly these variables (and PATH)."""
    return subprocess.run([sys.executable, "-m", "services.admin", "token", *argv], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, timeout=60)


def test_a_development_token_acts_for_its_municipality_as_its_caseworker(tmp_path, serve):
    development_keys(tmp_path)  # as the services of make run make them when they start
    minted = admin_token({"DATA_DIR": str(tmp_path)}, "--role", "caseworker", "--municipality", "751",
                         "--caseworker", "anna.aarhus")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert "\n" not in token  # stdout is the token alone: $(python -m services.admin token ...)
    assert "caseworker anna.aarhus for Aarhus (751), valid 30 days" in minted.stderr
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["roles"], claims["municipalities"]) == ("anna.aarhus", [CASEWORKER], ["751"])
    assert (claims["iss"], claims["aud"], claims["exp"] - claims["iat"]) == ("frisag-development", "frisag", 30 * DAY)

    settings = ObligationsSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path,
                                   auth_jwks_url=None)  # the development key the command signed with
    with serve(obligations_app(lambda: obligations_bootstrap(settings), settings), token=None) as obligations:
        assert obligations.get("/obligations", params={"municipality": "751"}, headers=bearer(token)).status_code == 200
        is_problem(obligations.get("/obligations", params={"municipality": "851"}, headers=bearer(token)), 403)
        is_problem(obligations.get("/obligations", params={"municipality": "751"}), 401)

    default = admin_token({"DATA_DIR": str(tmp_path)}, "--role", "integration", "--municipality", "851",
                          "--municipality", "751")
    claims = jwt.decode(default.stdout.strip(), options={"verify_signature": False})
    assert (claims["sub"], claims["municipalities"]) == ("dev-integration-851-751", ["851", "751"])


@pytest.mark.slow
def test_no_token_without_a_municipality_for_a_bound_role_nor_for_an_unknown_one_nor_a_cpr_holder(tmp_path):
    development_keys(tmp_path)
    for argv, reason in ((["--role", "caseworker"], "name one with --municipality"),
                         (["--role", "caseworker", "--municipality", "999"], "unknown kommunekode 999"),
                         (["--role", "caseworker", "--municipality", "851", "--caseworker", "010190-1234"], "CPR"),
                         (["--role", "nobody"], "invalid choice")):
        refused = admin_token({"DATA_DIR": str(tmp_path)}, *argv)
        assert refused.returncode != 0 and refused.stdout == "", argv
        assert reason in refused.stderr, refused.stderr
    evaluator = admin_token({"DATA_DIR": str(tmp_path)}, "--role", "evaluator")  # bound to no municipality
    assert evaluator.returncode == 0 and jwt.decode(evaluator.stdout.strip(), options={"verify_signature": False})[
        "municipalities"] == []


def test_refused_when_the_services_check_tokens_against_an_identity_provider(tmp_path, issuer):
    production = {"ENVIRONMENT": "production", "DATABASE_URL": "postgresql://db/frisag",
                  "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}
    for env, reason in (({"AUTH_JWKS_URL": issuer.jwks_url}, "AUTH_JWKS_URL"),
                        ({"AUTH_JWKS_URL": "https://login.kommune.example/certs"}, "AUTH_JWKS_URL"),
                        ({**production, "AUTH_JWKS_URL": issuer.jwks_url}, "AUTH_JWKS_URL"),
                        (production, "AUTH_JWKS_URL: production needs the identity provider's keys")):
        data = tmp_path / str(len(list(tmp_path.iterdir())))
        refused = admin_token({"DATA_DIR": str(data), **env}, "--role", "caseworker", "--municipality", "751")
        assert refused.returncode == 1 and refused.stdout == "", env
        assert refused.stderr.startswith("no development token: ") and reason in refused.stderr, refused.stderr
        assert not data.exists()  # no development key made either


def test_refused_where_make_run_made_no_development_key(tmp_path):
    """Run outside make run's folder, a key made there would sign a token no service accepts."""
    refused = admin_token({"DATA_DIR": str(tmp_path / "var")}, "--role", "evaluator")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "no development signing key in " in refused.stderr and "make run" in refused.stderr, refused.stderr
    assert not (tmp_path / "var").exists()
