"""Token checks remembered: a valid token is verified once until it expires; an expired or
invalid one is never remembered."""

import json
from pathlib import Path

import pytest

from shared.auth import CASEWORKER, INTEGRATION, ROLES, Authenticator, authenticator, development_tokens
from shared.problems import Problem
from shared.settings import ServiceSettings
from tests.infra import Issuer


@pytest.fixture
def checks(tmp_path, monkeypatch) -> tuple[Issuer, Authenticator, list[str]]:
    issuer = Issuer(tmp_path)
    authenticator = Authenticator(issuer.jwks_url, "frisag-development", "frisag")
    checked: list[str] = []
    verify = authenticator._check

    def counting(token: str):
        checked.append(token)
        return verify(token)

    monkeypatch.setattr(authenticator, "_check", counting)
    return issuer, authenticator, checked


def test_a_valid_token_is_verified_once(checks):
    issuer, authenticator, checked = checks
    token = issuer.token(CASEWORKER, municipalities=["851"], subject="anna")
    first, second = authenticator.principal(token), authenticator.principal(token)
    assert first == second and first.subject == "anna" and first.municipalities == {"851"}
    assert checked == [token]


def test_a_token_past_its_expiry_is_verified_every_time(checks):
    issuer, authenticator, checked = checks
    late = issuer.token(CASEWORKER, lifetime=-10)  # expired, but within the 30 s clock leeway
    authenticator.principal(late)
    authenticator.principal(late)
    assert checked == [late, late]


def test_an_invalid_token_is_refused_every_time(checks, tmp_path):
    _, authenticator, checked = checks
    forged = Issuer(tmp_path / "forger").token(CASEWORKER)
    for _ in range(2):
        with pytest.raises(Problem) as refused:
            authenticator.principal(forged)
        assert refused.value.status == 401
    assert checked == [forged, forged]


def test_development_keys_under_a_relative_data_dir_sign_tokens_the_services_accept(tmp_path, monkeypatch):
    # as `make run` has it: DATA_DIR=var, relative to where it runs
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTH_JWKS_URL", raising=False)
    settings = ServiceSettings(data_dir=Path("var"))
    tokens = json.loads(development_tokens(settings).read_text())
    assert set(tokens) == set(ROLES)
    caseworker = authenticator(settings).principal(tokens[CASEWORKER])
    assert caseworker.roles == {CASEWORKER} and caseworker.municipalities == {"851"}
    assert len(authenticator(settings).principal(tokens[INTEGRATION]).municipalities) == 98


# blank, a control character (a line break would forge an audit line), not a string, too long
@pytest.mark.parametrize("subject", ["", "   ", "\t", "a\x00b", "a\nb", "a\x7fb", 42, ["a"], "a" * 257])
def test_a_subject_the_audit_log_cannot_keep_is_refused(checks, subject):
    issuer, authenticator, _ = checks
    with pytest.raises(Problem) as refused:
        authenticator.principal(issuer.token(CASEWORKER, subject=subject))
    assert refused.value.status == 401 and "sub" in refused.value.detail.lower()


@pytest.mark.parametrize("subject", ["a" * 256, "a", " a ", "f:8a3b:jensen", "Søren Ærø"])
def test_a_subject_of_1_to_256_characters_is_accepted_as_it_is(checks, subject):
    issuer, authenticator, _ = checks
    assert authenticator.principal(issuer.token(CASEWORKER, subject=subject)).subject == subject


def test_kommunekoder_that_are_not_among_the_98_grant_nothing(checks):
    issuer, authenticator, _ = checks
    token = issuer.token(CASEWORKER, municipalities=["851", "8\x0051", "999", "0851"])
    assert authenticator.principal(token).municipalities == {"851"}


def test_an_expiry_past_what_a_clock_can_hold_is_refused_not_a_server_error(checks):
    """Signed by the issuer, yet `exp` 10**400 seconds: no date; a 401 as for any token it cannot
    read, not a 500. Year 3000 is a date (if a long one)."""
    issuer, authenticator, _ = checks
    with pytest.raises(Problem) as refused:
        authenticator.principal(issuer.token(CASEWORKER, municipalities=["851"], exp=10**400))
    assert refused.value.status == 401 and "exp" in str(refused.value.detail)
    assert authenticator.principal(issuer.token(CASEWORKER, municipalities=["851"], exp=32503680000)).roles == {CASEWORKER}
