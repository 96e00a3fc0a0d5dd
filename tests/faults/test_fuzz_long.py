"""The long schemathesis run of `make faults`: each service on PostgreSQL (in a process of its
own) answers at least 5,000 requests: generated ones (valid and invalid), ones with bad input of
each known class (tests/bad_input.py: deep nesting, NUL bytes, extreme dates, huge numbers,
overlong ids and subjects), then sequences that follow the schema's OpenAPI links. No 5xx, every
4xx problem+json, nothing stored on a refusal (tests/integration/test_fuzz.py, whose smaller run
stays in `make test`)."""

import os

import pytest

from tests.integration.test_fuzz import APPS, fuzz

REQUESTS = int(os.environ.get("FAULTS_FUZZ_REQUESTS", "3000"))  # generated one by one, exactly
SPOILT = int(os.environ.get("FAULTS_FUZZ_SPOILT", "1500"))  # with bad input of a known class, exactly
STATEFUL_STEPS = int(os.environ.get("FAULTS_FUZZ_STATEFUL_STEPS", "1000"))  # in link-following sequences: at least half


@pytest.mark.parametrize("service", APPS)
def test_at_least_5000_requests_get_no_5xx(service, database_url, tmp_path, issuer):
    sent = fuzz(service, database_url, tmp_path, issuer, REQUESTS, SPOILT, STATEFUL_STEPS)
    print(f"\n{service}: {sent} requests")
    assert sent >= 5000
