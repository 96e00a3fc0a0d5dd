"""The settings classes: production refuses development secrets and embedded stores, only the case
service holds the keys that read a citizen, and the README's one configuration table lists every
option of every service, and nothing else."""

import base64
import re
from pathlib import Path

import pytest

from services.__main__ import RunSettings, _environment
from services.case.settings import CaseSettings
from services.obligations.settings import ObligationsSettings
from services.reporting.settings import ReportingSettings
from services.web.settings import WebSettings
from shared.settings import DEV_CASE_STORE_KEY, DEV_PSEUDONYM_KEY, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
CLASSES = [CaseSettings, ObligationsSettings, ReportingSettings]
REAL = {"database_url": "postgresql://frisag@db:5432/frisag", "kafka_bootstrap_servers": "kafka:9092",
        "auth_jwks_url": "https://login.example.dk/realms/frisag/protocol/openid-connect/certs"}
KEY = "k" * 32
STORE_KEY = base64.b64encode(bytes(range(32))).decode()
# what production needs of one service: the case service its keys and a retention
OWN = {CaseSettings: {"retention_after_close_days": 1826, "case_store_key": STORE_KEY, "pseudonym_key": KEY}}
CONSUMERS = [ObligationsSettings, ReportingSettings]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for cls in CLASSES:
        for field in cls.model_fields:
            monkeypatch.delenv(field.upper(), raising=False)


@pytest.mark.parametrize("cls", CLASSES)
def test_production_with_real_parts_and_a_secret_key_starts(cls):
    settings = cls(environment="production", **REAL, **OWN.get(cls, {}))
    assert settings.environment == "production"


def test_production_refuses_to_keep_closed_cases_for_ever():
    with pytest.raises(ValueError, match="RETENTION_AFTER_CLOSE_DAYS"):
        CaseSettings(environment="production", **REAL, **{**OWN[CaseSettings], "retention_after_close_days": 0})
    assert CaseSettings().retention_after_close_days == 0  # development keeps them


@pytest.mark.parametrize("key", [DEV_PSEUDONYM_KEY, "", "k" * 31])
def test_production_refuses_the_development_key_or_a_short_one(key):
    with pytest.raises(ValueError, match="PSEUDONYM_KEY"):
        CaseSettings(environment="production", **REAL, **{**OWN[CaseSettings], "pseudonym_key": key})


@pytest.mark.parametrize("missing", ["database_url", "kafka_bootstrap_servers"])
def test_production_refuses_the_embedded_stores(missing):
    with pytest.raises(ValueError, match="DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS"):
        ServiceSettings(environment="production", **{**REAL, missing: None})


def test_production_refuses_the_development_signing_key():
    with pytest.raises(ValueError, match="AUTH_JWKS_URL"):
        ServiceSettings(environment="production", **{**REAL, "auth_jwks_url": None})


def test_production_refuses_the_development_case_store_key():
    with pytest.raises(ValueError, match="CASE_STORE_KEY"):
        CaseSettings(environment="production", **REAL, **{**OWN[CaseSettings], "case_store_key": DEV_CASE_STORE_KEY})


@pytest.mark.parametrize("key", ["not base64!", base64.b64encode(b"15 bytes only..").decode()])
def test_a_case_store_key_that_is_no_aes_key_is_refused(key):
    with pytest.raises(ValueError, match="CASE_STORE_KEY: base64 of a 16, 24 or 32 byte AES key"):
        CaseSettings(case_store_key=key)


@pytest.mark.parametrize("cls", CONSUMERS)
@pytest.mark.parametrize("given", [["CASE_STORE_KEY"], ["PSEUDONYM_KEY"], ["CASE_STORE_KEY", "PSEUDONYM_KEY"]])
@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_consumer_given_a_key_that_reads_a_citizen_refuses_to_start(monkeypatch, cls, given, environment):
    monkeypatch.setenv("ENVIRONMENT", environment)
    for name, value in REAL.items():
        monkeypatch.setenv(name.upper(), value)
    assert cls().environment == environment  # without the keys it starts
    for name in given:
        monkeypatch.setenv(name, STORE_KEY if name == "CASE_STORE_KEY" else KEY)
    with pytest.raises(ValueError, match=" and ".join(given) + ": only the case service"):
        cls()
    assert not {"case_store_key", "pseudonym_key"} & set(ServiceSettings.model_fields)  # nobody else reads them


def test_production_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS"):
        ObligationsSettings()
    for name, value in REAL.items():
        monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ValueError, match="PSEUDONYM_KEY"):
        CaseSettings()


def test_development_runs_embedded_with_the_development_keys():
    settings = CaseSettings()
    assert settings.environment == "development" and settings.database_url is None
    assert settings.pseudonym_key.get_secret_value() == DEV_PSEUDONYM_KEY
    assert settings.case_store_key.get_secret_value() == DEV_CASE_STORE_KEY
    assert ObligationsSettings().pseudonym_key is None


def test_the_readme_configuration_table_lists_every_option_and_only_those():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z_]+)` \|", section, re.MULTILINE)
    options = {field.upper() for cls in [*CLASSES, RunSettings, WebSettings] for field in cls.model_fields}
    assert len(documented) == len(set(documented)), "an option is listed twice"
    assert set(documented) == options


def test_make_run_gives_the_consumers_no_key_that_reads_a_citizen_in_any_spelling(monkeypatch):
    """The settings read environment names in any case, so the filter must too."""
    for name in ("CASE_STORE_KEY", "pseudonym_key", "Pseudonym_Key"):
        monkeypatch.setenv(name, "a key")
    for consumer in ("obligations", "reporting", "web"):
        assert not {n.upper() for n in _environment(consumer)} & {"CASE_STORE_KEY", "PSEUDONYM_KEY"}
    assert {"CASE_STORE_KEY", "pseudonym_key", "Pseudonym_Key"} <= set(_environment("case"))


def test_the_readme_names_the_settings_that_read_each_web_and_make_run_option():
    """A row whose 'used by' names `web` is an option of WebSettings, one naming `make run` of
    RunSettings, and back: the port `make run` serves the web pages on is make run's alone."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    used_by = {name: {s.strip(" `") for s in who.split(",")}
               for name, who in re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.MULTILINE)}
    for cls, reader in ((WebSettings, "web"), (RunSettings, "make run")):
        own = {field.upper() for field in cls.model_fields} - {f.upper() for f in ServiceSettings.model_fields}
        assert own == {name for name, who in used_by.items() if reader in who}, reader
    assert "web_port" not in WebSettings.model_fields


def test_the_web_service_in_production_needs_a_session_key_of_32_characters_or_more():
    production = {"environment": "production", "auth_jwks_url": "https://login.example.dk/certs",
                  "auth_issuer": "https://login.example.dk", "oidc_client_id": "frisag-web",
                  "web_base_url": "https://frisag.example.dk"}
    for short in ("", "CHANGE_ME", "k" * 31):  # an empty SESSION_KEY (compose's unset default) too
        with pytest.raises(ValueError, match="SESSION_KEY"):
            WebSettings(**production, session_key=short)
    assert WebSettings(**production, session_key="k" * 32).session_key.get_secret_value() == "k" * 32
    assert WebSettings(session_key="").session_key is None  # development: empty is unset, a new key each start


def test_the_web_service_signs_in_through_the_identity_provider_in_production_and_with_its_keys_only():
    provider = {"auth_jwks_url": "https://login.example.dk/certs", "auth_issuer": "https://login.example.dk",
                "oidc_client_id": "frisag-web", "web_base_url": "https://frisag.example.dk/"}
    production = {"environment": "production", "session_key": "k" * 32}
    with pytest.raises(ValueError, match="OIDC_CLIENT_ID"):
        WebSettings(**production, **{**provider, "oidc_client_id": ""})  # empty: unset, as compose passes it
    for missing, needed in (("auth_jwks_url", "AUTH_JWKS_URL"), ("web_base_url", "WEB_BASE_URL")):
        with pytest.raises(ValueError, match=needed):
            WebSettings(**{**provider, missing: None})
    with pytest.raises(ValueError, match="AUTH_ISSUER"):
        WebSettings(**provider | {"auth_issuer": "frisag-development"})  # discovery needs its URL
    settings = WebSettings(**production, **provider, oidc_client_secret="")
    assert settings.oidc_client_secret is None  # empty: a public client
    assert settings.redirect_uri == "https://frisag.example.dk/log-ind/retur"  # the trailing / of the base dropped
    assert not settings.development_sign_in
