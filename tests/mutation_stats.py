"""A pytest plugin for `make mutation` only (pyproject's [tool.mutmut] loads it with -p): while
mutmut finds out which tests reach which functions, what a module- or session-scoped fixture
calls counts for every test that uses the fixture, not only for the first one (during whose
setup it ran). Without it, a mutant of `evaluate` would be tried against one of the tests that
check the rows of test_evaluation's `world`, and survive the checks of all the others.

The fixture's setup time counts for each such test too: mutmut runs a mutant's tests fastest
first and sets its time limit from their times, and a test that reads a population of 1,500
folded cases is not a fast one, however quick its own body."""

import os
import time

import pytest
from mutmut.state import state

_called_by: dict[int, set[str]] = {}  # id(fixture definition) -> the mutated functions its setup called
_seconds: dict[int, float] = {}  # id(fixture definition) -> how long its setup took


def _collecting() -> bool:
    return os.environ.get("MUTANT_UNDER_TEST") == "stats"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if not _collecting():
        return (yield)
    collected = state()
    outer, collected._stats = collected._stats, set()
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        called, collected._stats = collected._stats, outer
        outer |= called
        _called_by.setdefault(id(fixturedef), set()).update(called)
        _seconds[id(fixturedef)] = max(_seconds.get(id(fixturedef), 0.0), time.perf_counter() - started)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    if _collecting():
        for fixturedefs in item._fixtureinfo.name2fixturedefs.values():
            for fixturedef in fixturedefs:
                state()._stats |= _called_by.get(id(fixturedef), set())
                state().duration_by_test[item.nodeid] += _seconds.get(id(fixturedef), 0.0)
