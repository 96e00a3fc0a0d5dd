"""Issue 18: GET /obligations/changes, Server-Sent Events naming the cases of a municipality whose
obligations were derived again, read over HTTP from a live obligations service fed by the case
service (embedded on SQLite; Kafka on PostgreSQL): resumed with Last-Event-ID, nothing missed and
nothing repeated; scoped to the token's municipalities."""

import json
import shutil
import threading
import time

import httpx
import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from shared.catalog import CATALOG_DIR
from tests.events import benefit_started, event, opened
from tests.conftest import LiveServer
from tests.infra import bearer, is_problem
from tests.integration.test_obligations_service import obligations_of, post, settings_for, wait_for

STREAM_SECONDS = 1.5  # each stream ends after this: the tests' reads end with it


@pytest.fixture
def services(request, tmp_path, serve):
    """(case client, obligations client) for one mode; streams poll often and end soon."""
    common = settings_for(request, tmp_path, getattr(request, "param", "embedded"))
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, catalog_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    settings = ObligationsSettings(**common, catalog_dir=catalog_dir, changes_poll_seconds=0.1,
                                   changes_heartbeat_seconds=0.5, changes_stream_seconds=STREAM_SECONDS)
    with serve(case_app(lambda: case_bootstrap(CaseSettings(**common)))) as case, \
            serve(obligations_app(lambda: obligations_bootstrap(settings), settings)) as obligations:
        yield case, obligations


def read(client: httpx.Client, token: str, last_event_id: str | None = None, until=None,
         on_open=None, **params) -> tuple[list[dict], list[str], str | None]:
    """The stream's events with data (`data` parsed, and their `id` or None), its comments, and
    the last id it gave; read to its end, or until `until(events)` holds. `on_open` runs once the
    stream has begun."""
    headers = bearer(token) | ({"Last-Event-ID": last_event_id} if last_event_id is not None else {})
    events, comments, last_id, field = [], [], last_event_id, {}
    with client.stream("GET", "/obligations/changes", params=params, headers=headers) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        if on_open:
            on_open()
        for line in answer.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            elif line:
                name, _, value = line.partition(":")
                field[name] = value.removeprefix(" ")
            else:  # dispatch, as an EventSource does: an id sets the last id, data makes an event
                last_id = field.get("id", last_id)
                if "data" in field:
                    events.append({"data": json.loads(field["data"]), "id": field.get("id")})
                field = {}
                if until and until(events):
                    break
    return events, comments, last_id


def cases(events: list[dict]) -> list[str]:
    return [e["data"]["case_id"] for e in events]


@pytest.mark.parametrize("services", ["embedded", "kafka"], indirect=True)
def test_changes_resume_after_the_last_event_id_scoped_to_the_municipality(services, issuer):
    case, obligations = services
    aalborg = issuer.token("caseworker", municipalities=["851"])
    aarhus = issuer.token("caseworker", municipalities=["751"])
    post(case, opened("aal-1", municipality="851"), benefit_started("aal-1", date="2019-01-01"),
         opened("aar-1", municipality="751"), benefit_started("aar-1", date="2019-01-01"))
    for case_id in ("aal-1", "aar-1"):
        assert wait_for(lambda: obligations_of(obligations, case_id, "2019-03-01"))

    # without Last-Event-ID: from now on; nothing yet, but where to resume, and heartbeats
    started = time.monotonic()
    events, comments, now = read(obligations, aalborg)
    assert events == [] and now is not None and now.isdigit()
    assert comments and STREAM_SECONDS <= time.monotonic() - started < STREAM_SECONDS + 5  # ends by itself

    post(case, event("case.assigned", "aal-1", caseworker="cw-7", date="2019-02-01"),
         opened("aal-2", municipality="851"), benefit_started("aal-2", date="2019-01-01"),
         event("case.assigned", "aar-1", caseworker="cw-9", date="2019-02-01"))
    assert wait_for(lambda: obligations_of(obligations, "aal-2", "2019-03-01"))
    assert wait_for(lambda: obligations.get("/obligations", params={"municipality": "751", "caseworker": "cw-9",
                                                                    "as_of": "2019-03-01"}).json()["items"])

    # resumed: each Aalborg case changed since, once; no Aarhus case; in the order of their ticks
    events, _, resumed = read(obligations, aalborg, now)
    assert sorted(cases(events)) == ["aal-1", "aal-2"]
    assert all(e["data"] == {"case_id": e["data"]["case_id"], "municipality": "851"} for e in events)
    assert events[-1]["id"] is not None and int(resumed) > int(now)
    assert [int(e["id"]) for e in events if e["id"]] == sorted(int(e["id"]) for e in events if e["id"])
    # from the last id: nothing repeated
    assert read(obligations, aalborg, resumed)[0] == []
    # from the first event's id: only what came after it
    first = next(e["id"] for e in events if e["id"])
    assert cases(read(obligations, aalborg, first)[0]) == cases(events)[cases(events).index(
        next(e for e in events if e["id"] == first)["data"]["case_id"]) + 1:]

    # live: a change while listening arrives without reconnecting
    def change() -> None:
        post(case, event("case.assigned", "aal-2", caseworker="cw-8", date="2019-02-02"))

    events, _, _ = read(obligations, aalborg, resumed, until=lambda found: found,
                        on_open=lambda: threading.Timer(0.3, change).start())
    assert cases(events) == ["aal-2"]

    # Aarhus sees its own case only, never Aalborg's
    assert cases(read(obligations, aarhus, "0")[0]) == ["aar-1"]


def test_the_municipality_must_be_the_tokens_and_the_last_event_id_one_of_the_stream(services, issuer):
    _, obligations = services
    aalborg = issuer.token("caseworker", municipalities=["851"])
    refused = is_problem(obligations.get("/obligations/changes", params={"municipality": "751"},
                                         headers=bearer(aalborg)), 403)
    assert "751" in refused["detail"]
    for wrong in ("abc", "-1", "1.5", "9" * 19):
        bad = is_problem(obligations.get("/obligations/changes", headers=bearer(aalborg) | {"Last-Event-ID": wrong}), 422)
        assert [e["field"] for e in bad["errors"]] == ["Last-Event-ID"]
    several = issuer.token("caseworker", municipalities=["851", "751"])
    assert is_problem(obligations.get("/obligations/changes", headers=bearer(several)), 422)["errors"][0]["field"] == "municipality"
    evaluator = issuer.token("evaluator")
    is_problem(obligations.get("/obligations/changes", params={"municipality": "851"}, headers=bearer(evaluator)), 403)


def test_an_open_stream_holds_up_a_shutdown_no_longer_than_its_time(tmp_path, issuer):
    settings = ObligationsSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path,
                                   changes_poll_seconds=0.1, changes_heartbeat_seconds=0.5,
                                   changes_stream_seconds=STREAM_SECONDS)
    server = LiveServer(obligations_app(lambda: obligations_bootstrap(settings), settings),
                        token=issuer.token("caseworker", municipalities=["851"]))
    client = server.__enter__()
    lines: list[str] = []

    def listen() -> None:
        with client.stream("GET", "/obligations/changes") as answer:
            lines.extend(answer.iter_lines())

    listener = threading.Thread(target=listen, daemon=True)  # a stream that never ends must not hold up pytest
    listener.start()
    assert wait_for(lambda: lines or listener.is_alive(), timeout=5)
    time.sleep(0.3)
    stopping = time.monotonic()
    server.server.should_exit = True
    server.thread.join(timeout=STREAM_SECONDS + 5)
    listener.join(timeout=5)
    assert not server.thread.is_alive() and not listener.is_alive()
    assert time.monotonic() - stopping < STREAM_SECONDS + 2
    assert any(line.startswith("id: ") for line in lines)  # the client has where to resume from
    server.__exit__(None, None, None)
