"""A database role per service, as deploy/base/postgres-roles.sh creates them for compose and
Kubernetes: each service migrates and runs as its own role, owns its tables, and the consumers'
roles are refused the case store's tables (and each other's)."""

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from services.case.api import create_app as case_app
from services.case.bootstrap import bootstrap as case_bootstrap
from services.case.settings import CaseSettings
from services.obligations.api import create_app as obligations_app
from services.obligations.bootstrap import bootstrap as obligations_bootstrap
from services.obligations.settings import ObligationsSettings
from services.reporting.api import create_app as reporting_app
from services.reporting.bootstrap import bootstrap as reporting_bootstrap
from services.reporting.settings import ReportingSettings
from tests.events import benefit_started, opened

SCRIPT = Path(__file__).parents[2] / "deploy" / "base" / "postgres-roles.sh"
ROLES = {"case": "frisag_case", "obligations": "frisag_obligations", "reporting": "frisag_reporting"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def as_role(database_url: str, role: str) -> str:
    url = urlsplit(database_url)
    return url._replace(netloc=f"{role}:{role}-password@{url.hostname}:{url.port or 5432}").geturl()


def create_roles(database_url: str) -> None:
    url = urlsplit(database_url)
    env = os.environ | {"PGHOST": url.hostname, "PGPORT": str(url.port or 5432), "PGUSER": url.username or "postgres",
                        "PGDATABASE": url.path.lstrip("/"),
                        **{f"{service.upper()}_DB_PASSWORD": f"{role}-password" for service, role in ROLES.items()}}
    subprocess.run(["sh", str(SCRIPT)], env=env, check=True, capture_output=True)


def wait_for(probe, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


@pytest.mark.integration
def test_each_service_migrates_and_runs_as_its_own_role_and_the_consumers_cannot_read_the_case_store(
        database_url, kafka, topic, tmp_path, serve):
    create_roles(database_url)
    common = {"kafka_bootstrap_servers": kafka, "kafka_topic": topic, "kafka_topic_partitions": 3,
              "kafka_session_timeout_ms": 6000, "data_dir": tmp_path}
    url = {service: as_role(database_url, role) for service, role in ROLES.items()}
    with serve(case_app(lambda: case_bootstrap(CaseSettings(database_url=url["case"], **common)))) as case, \
            serve(obligations_app(lambda: obligations_bootstrap(
                ObligationsSettings(database_url=url["obligations"], **common)))) as obligations, \
            serve(reporting_app(lambda: reporting_bootstrap(
                ReportingSettings(database_url=url["reporting"], **common)))) as reporting:
        answer = case.post("/events", json=[opened("roles-1"), benefit_started("roles-1")], headers=BATCH)
        assert answer.status_code == 201, answer.text
        assert case.get("/cases/roles-1").status_code == 200
        assert wait_for(lambda: obligations.get("/cases/roles-1/obligations", params={"as_of": "2020-02-01"})
                        .status_code == 200)
        assert wait_for(lambda: reporting.get("/status").json()["cases"] == 1)

    with psycopg.connect(database_url) as admin:
        owners = dict(admin.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall())
    # every table is its service's: made by its migrations (or, the event store's, by the library) as its role
    assert set(owners.values()) <= set(ROLES.values()), owners
    by_owner = {role: {t for t, o in owners.items() if o == role} for role in ROLES.values()}
    assert {"case_data_keys", "case_audit"} < by_owner["frisag_case"]
    assert len(by_owner["frisag_case"]) > 2  # the event store's tables too
    assert all(t.startswith("obligations") for t in by_owner["frisag_obligations"])
    assert {"obligations_cases", "obligations_audit", "obligations"} < by_owner["frisag_obligations"]
    assert all(t.startswith("reporting_") for t in by_owner["frisag_reporting"])
    assert {"reporting_cases", "reporting_audit"} < by_owner["frisag_reporting"]

    for reader, role in ROLES.items():
        with psycopg.connect(url[reader], autocommit=True) as conn:
            for owner, tables in by_owner.items():
                for table in sorted(tables):
                    if owner == role:
                        conn.execute(f'SELECT * FROM "{table}" LIMIT 1')
                        continue
                    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                        conn.execute(f'SELECT * FROM "{table}" LIMIT 1')
