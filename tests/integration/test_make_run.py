"""`make run` as the README tells it: `python -m services` in a fresh folder starts the web pages
and the three services embedded, prints where to look (the pages first) and where the tokens are,
and answers the README's walk-through; the obligations, reporting and web processes start without
the keys that read a citizen (given to make run, they reach the case service only), the web
service with the APIs' addresses; Ctrl-C stops everything. On ports from its settings (WEB_PORT,
CASE_PORT, OBLIGATIONS_PORT, REPORTING_PORT): free ones here, while the default 8001 is taken."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.infra import bearer

CITIZEN_KEYS = {"CASE_STORE_KEY": "bWFrZS1ydW4tdGVzdC1jYXNlLXN0b3JlLWtleS0zMiE=", "PSEUDONYM_KEY": "make-run-test-pseudonym-key"}


def children_environments(pid: int) -> dict[str, dict[str, str]]:
    """Per service make run started (its uvicorn app), the environment that process started with."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != pid:
                continue
            command = (stat.parent / "cmdline").read_bytes().decode()
            environ = (stat.parent / "environ").read_bytes().decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        for name, module in (("web", "app"), ("case", "api"), ("obligations", "api"), ("reporting", "api")):
            if f"services.{name}.{module}:app" in command:
                found[name] = dict(v.split("=", 1) for v in environ.split("\0") if "=" in v)
    return found


@pytest.fixture
def taken_8001() -> Iterator[None]:
    """Something else listens on make run's default case port (or already did)."""
    with socket.socket() as other:
        try:
            other.bind(("127.0.0.1", 8001))
            other.listen()
        except OSError:
            pass  # taken already
        yield


def free_ports() -> tuple[int, int, int, int]:
    """Four different free ports (held at once while picked, so none comes twice)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(4)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        web, case, obligations, reporting = (s.getsockname()[1] for s in sockets)
    return web, case, obligations, reporting


def environment(web: int, case: int, obligations: int, reporting: int) -> dict[str, str]:
    """Ours, without what would point make run elsewhere than embedded, with these ports."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "AUTH_JWKS_URL",
                                                            "DATA_DIR")}
    return env | {"WEB_PORT": str(web), "CASE_PORT": str(case), "OBLIGATIONS_PORT": str(obligations),
                  "REPORTING_PORT": str(reporting)}


def test_make_run_starts_everything_embedded_and_prints_where_to_look(tmp_path, taken_8001):
    ports = web, case, obligations, reporting = free_ports()
    env = environment(*ports) | CITIZEN_KEYS  # set where make run is started: the case service gets them, the consumers not
    run = subprocess.Popen([sys.executable, "-m", "services"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        deadline = time.monotonic() + 60
        while not any("Ctrl-C stops everything" in line for line in printed) and time.monotonic() < deadline:
            line = run.stdout.readline()
            assert line, "make run stopped: " + "".join(printed)
            printed.append(line)
        text = "".join(printed)
        listed = [line.split()[0] for line in printed if "http://127.0.0.1:" in line and line.startswith("  ")]
        assert listed == ["web", "case", "obligations", "reporting"]  # the pages first
        assert f"http://127.0.0.1:{web}/  (sign in at /log-ind)" in text
        for port in (case, obligations, reporting):
            assert f"http://127.0.0.1:{port}/docs" in text
        assert f"Post events to http://127.0.0.1:{case}/events" in text
        (tokens_line,) = [line for line in printed if "Bearer tokens" in line]
        tokens = json.loads((tmp_path / tokens_line.rsplit(": ", 1)[1].strip()).read_text())

        opened = {"specversion": "1.0", "id": "m-1", "source": "jobcenter/851/momentum",
                  "type": "dk.frisag.case.opened", "subject": "case-42",
                  "data": {"cpr": "010190-1234", "municipality": "851", "date": "2019-01-01"}}
        started = {**opened, "id": "m-2", "type": "dk.frisag.benefit.started",
                   "data": {"benefit": "ledighedsydelse", "date": "2019-01-01"}}
        for event in (opened, started):
            answer = httpx.post(f"http://127.0.0.1:{case}/events", json=event, headers={
                **bearer(tokens["integration"]), "content-type": "application/cloudevents+json"})
            assert answer.status_code == 201, answer.text

        def las_74c() -> list[dict]:
            answer = httpx.get(f"http://127.0.0.1:{obligations}/cases/case-42/obligations",
                               params={"as_of": "2020-02-01"}, headers=bearer(tokens["caseworker"]))
            return [o for o in answer.json().get("obligations", []) if o["rule"] == "LAS-74c"]

        deadline = time.monotonic() + 30
        while not las_74c() and time.monotonic() < deadline:
            time.sleep(0.2)
        first = las_74c()[0]  # due after 12 months of ledighedsydelse, in Aalborg during T11
        assert (first["due"], first["status"], first["exemption"]["trial"]) == ("2020-01-01", "waived", "T11")
        assert httpx.get(f"http://127.0.0.1:{reporting}/trials", headers=bearer(tokens["evaluator"])).status_code == 200
        environments = children_environments(run.pid)
        assert set(environments) == {"web", "case", "obligations", "reporting"}
        assert CITIZEN_KEYS.items() <= environments["case"].items()
        for consumer in ("obligations", "reporting", "web"):
            assert not set(CITIZEN_KEYS) & set(environments[consumer]), consumer
        assert {name: environments["web"][f"{name.upper()}_URL"] for name in ("case", "obligations", "reporting")} == {
            "case": f"http://127.0.0.1:{case}", "obligations": f"http://127.0.0.1:{obligations}",
            "reporting": f"http://127.0.0.1:{reporting}"}
        signed_out = httpx.get(f"http://127.0.0.1:{web}/opgaver")
        assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/log-ind")
        assert "Log ind" in httpx.get(f"http://127.0.0.1:{web}/log-ind").text
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 0


def test_a_terminated_make_run_stops_its_services(tmp_path, taken_8001):
    ports = free_ports()
    env = environment(*ports)
    run = subprocess.Popen([sys.executable, "-m", "services"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    while "Ctrl-C stops everything" not in (line := run.stdout.readline()):
        assert line, "make run stopped"
    run.terminate()  # SIGTERM, as a supervisor or `timeout` sends it
    assert run.wait(timeout=30) == 0
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after make run stopped"
