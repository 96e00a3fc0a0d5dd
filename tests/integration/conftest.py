from collections.abc import Iterator

import httpx
import pytest

from services.case.api import create_app
from services.case.bootstrap import bootstrap
from services.case.settings import CaseSettings


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request, tmp_path) -> CaseSettings:
    """The case store embedded (SQLite file) and in production shape (PostgreSQL)."""
    if request.param == "sqlite":
        return CaseSettings(database_url=None, kafka_bootstrap_servers=None, data_dir=tmp_path)
    return CaseSettings(database_url=request.getfixturevalue("database_url"), kafka_bootstrap_servers=None, data_dir=tmp_path)


@pytest.fixture
def case_api(store_settings, serve) -> Iterator[httpx.Client]:
    with serve(create_app(lambda: bootstrap(store_settings))) as client:
        yield client
