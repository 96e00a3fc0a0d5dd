"""A pytest plugin for `make mutation` only (pyproject's [tool.mutmut] loads it with -p): while
mutmut finds out which tests reach which functions, what a module- or session-scoped fixture
calls counts for every test that uses the fixture, not only for the first one (during whose
setup it ran). Without it, a mutant of `evaluate` would be tried against one of the tests that
check the rows of test_evaluation's `world`, and survive the checks of all the others.

For the same reason a part of the reporting facts remembers its answers for one test only while
the stats are collected: a test asking what an earlier one asked of a module's facts would
otherwise reach none of the code the answer comes from.

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


_test_number = 0  # of the test running: what a part of the facts remembers is remembered per test


def pytest_configure(config) -> None:
    if _collecting():
        from services.reporting.facts import Facts

        remembered, knows = Facts.answer, Facts.knows
        Facts.answer = lambda part, key, of, compute, update=None: remembered(part, (_test_number, key), of, compute,
                                                                               update)
        Facts.knows = lambda part, key, of: knows(part, (_test_number, key), of)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    global _test_number
    _test_number += 1


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


def _after_stats() -> bool:
    # the clean run (""), a mutant's (its name) and mutmut's collecting ones; not the stats run
    return os.environ.get("MUTANT_UNDER_TEST") != "stats"


def _no_shrinking(test) -> None:
    """A property test runs all its examples but does not shrink a failure: one failing example
    kills. (A fifth of the examples was tried: test_reference_oracle's 30 of 150 then missed
    `_first_reaching__mutmut_28` and `_29`, which all 150 find.)"""
    from hypothesis import Phase, settings

    if hasattr(test, "_full_settings"):  # a parametrized test's items share the function
        return
    own = test._full_settings = test._hypothesis_internal_use_settings  # read by @given when it runs
    test._hypothesis_internal_use_settings = settings(own, phases=[p for p in own.phases if p is not Phase.shrink])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """After the stats run: a mutant's tests fastest first (by their times in the stats run), so
    that `-x` stops at the first failure early (mutmut 3.8.1 hands them to pytest in a set's
    order, which also split a module's tests and set its module-scoped fixtures up again each
    time); the property tests without shrinking a failure."""
    if not _after_stats():
        return
    seconds = state().duration_by_test

    def group(item: pytest.Item) -> str:
        # the tests using a module-scoped fixture stay together: a test of another module run
        # between them tears it down, and the next one sets it up again
        fixturedefs = item._fixtureinfo.name2fixturedefs.values()
        return str(item.path) if any(d.scope == "module" for defs in fixturedefs for d in defs) else item.nodeid

    def cost(item: pytest.Item) -> float:
        return seconds.get(item.nodeid, float("inf"))

    cheapest: dict[str, float] = {}
    for item in items:
        cheapest[group(item)] = min(cheapest.get(group(item), float("inf")), cost(item))
    items.sort(key=lambda item: (cheapest[group(item)], group(item), cost(item)))
    for item in items:
        test = getattr(item, "obj", None)
        if getattr(test, "is_hypothesis_test", False):
            _no_shrinking(test)
