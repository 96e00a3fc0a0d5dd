"""The long schemathesis run of `make faults`: each service on PostgreSQL (in a process of its
own) answers at least 5,000 requests, generated (valid and invalid) and hostile by hand (deep
nesting, NUL bytes, extreme dates, huge numbers, overlong ids and subjects), then sequences
that follow the schema's links. No 5xx, every 4xx problem+json, nothing stored on a refusal
(tests/integration/test_fuzz.py, whose smaller run stays in `make test`)."""

import os

import pytest

from tests.integration.test_fuzz import APPS, fuzz

REQUESTS = int(os.environ.get("FAULTS_FUZZ_REQUESTS", "4000"))  # generated one by one
STATEFUL_STEPS = int(os.environ.get("FAULTS_FUZZ_STATEFUL_STEPS", "1000"))  # in link-following sequences


@pytest.mark.parametrize("service", APPS)
def test_at_least_5000_requests_get_no_5xx(service, database_url, tmp_path, issuer):
    sent = fuzz(service, database_url, tmp_path, issuer.everything(), REQUESTS, STATEFUL_STEPS, hostile=True)
    print(f"\n{service}: {sent} requests")
    assert sent >= REQUESTS + STATEFUL_STEPS // 2
