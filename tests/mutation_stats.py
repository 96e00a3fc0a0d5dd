"""A pytest plugin for `make mutation` only (pyproject's [tool.mutmut] loads it with -p): while
mutmut finds out which tests reach which functions, what a module- or session-scoped fixture
calls counts for every test that uses the fixture, not only for the first one (during whose
setup it ran). Without it, a mutant of `evaluate` would be tried against one of the tests that
check the rows of test_evaluation's `world`, and survive the checks of all the others."""

import os

import pytest
from mutmut.state import state

_called_by: dict[int, set[str]] = {}  # id(fixture definition) -> the mutated functions its setup called


def _collecting() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if not _collecting():
        return (yield)
    collected = state()
    outer, collected._stats = collected._stats, set()
    try:
        return (yield)
    finally:
        called, collected._stats = collected._stats, outer
        outer |= called
        _called_by.setdefault(id(fixturedef), set()).update(called)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    if _collecting():
        for fixturedefs in item._fixtureinfo.name2fixturedefs.values():
            for fixturedef in fixturedefs:
                state()._stats |= _called_by.get(id(fixturedef), set())
