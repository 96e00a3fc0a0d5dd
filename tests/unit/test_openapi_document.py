"""What each service's OpenAPI document says of tokens and problems (shared/openapi.py), read
from the document as FastAPI serves it; tests/integration/test_stock_openapi.py generates
clients from it."""

import json

import pytest

from services.case.api import create_app as case_app
from services.obligations.api import create_app as obligations_app
from services.reporting.api import create_app as reporting_app

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
OPEN = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}  # to the platform, without a token


@pytest.fixture(scope="module", params=["case", "obligations", "reporting"])
def document(request) -> dict:
    return {"case": case_app, "obligations": obligations_app, "reporting": reporting_app}[request.param]().openapi()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_a_bearer_token_is_asked_for_where_one_is_checked(document):
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for method, path, operation in operations(document):
        asked = operation.get("security")
        assert asked == (None if (method, path) in OPEN else [{"bearer": []}]), (method, path)
        if asked:
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_every_error_is_problem_json_and_none_is_fastapis_own(document):
    assert "HTTPValidationError" not in json.dumps(document)
    for method, path, operation in operations(document):
        errors = {status: r for status, r in operation["responses"].items() if status >= "400"}
        assert "503" in errors, (method, path)  # the time limit answers anything
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in errors, (method, path)
        for status, response in errors.items():
            assert response["content"] == PROBLEM, (method, path, status)
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail"]
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}


def test_the_events_body_is_one_cloudevent_or_a_batch_of_them():
    document = case_app().openapi()
    post = document["paths"]["/events"]["post"]
    event = {"$ref": "#/components/schemas/CloudEvent"}
    # one media type (a generator cannot make an operation of several); the others are described
    assert post["requestBody"]["content"] == {"application/json": {"schema": {
        "anyOf": [event, {"type": "array", "items": event, "minItems": 1}]}}}
    assert all(kind in post["description"] for kind in (
        "application/cloudevents+json", "application/cloudevents-batch+json", "HTTP binary"))
    variants = document["components"]["schemas"]["CloudEvent"]["oneOf"]
    assert len(variants) == 18 and {"$ref": "#/components/schemas/CaseOpenedEvent"} in variants
    assert {"400", "409", "410", "413", "415"} <= set(post["responses"])
    for status in ("200", "201"):
        assert post["responses"][status]["content"]["application/json"]["schema"]["anyOf"] == [
            {"$ref": "#/components/schemas/Stored"}, {"type": "array", "items": {"$ref": "#/components/schemas/Stored"}}]
