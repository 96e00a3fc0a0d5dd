"""Each rule's behaviour as scenario files beside the catalog (shared/catalog/scenarios/), in
the style of OpenFisca's YAML tests: a few events in, an as-of date, and every obligation of the
named rules expected out (rule, due, status, exemption). One test runs them all; another checks
that every rule and every trial with a concrete effect has its scenarios."""

from datetime import date
from types import SimpleNamespace

import pytest
import yaml

from shared.catalog import CATALOG_DIR, Catalog, Period
from shared.obligations import fold
from shared.permissions import decide

SCENARIO_DIR = CATALOG_DIR / "scenarios"
CATALOG = Catalog.load()
INTEGER_FIELDS = {"interval_days"}
# trials whose effect the fold computes: each needs scenarios crossing its end and a move
CONCRETE = {t.id for t in CATALOG.trials.values() for e in t.effects
            if CATALOG.rules[e.rule].kind == "obligation" and CATALOG.rules[e.rule].schedule != "unobserved"
            and (e.effect != "modify" or e.parameter or e.individually_agreed)}


# Test ids in ASCII: pytest escapes a non-ASCII id again each time one process collects the
# module again (as `make mutation` does), and then cannot find the test by its id.
_ASCII = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa"})


def _scenarios() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        for scenario in yaml.safe_load(path.read_text(encoding="utf-8")):
            found.append((f"{path.stem}: {scenario['name']}".translate(_ASCII), scenario))
    assert all(i.isascii() for i, _ in found), "a scenario name with a letter _ASCII does not spell"
    return found


SCENARIOS = _scenarios()


def _event(line: str) -> SimpleNamespace:
    """'case.moved 2018-02-15 municipality=791' as the stream carries it."""
    name, day, *fields = line.split()
    data: dict = {"date": day}
    for f in fields:
        key, value = f.split("=", 1)
        data[key] = {"true": True, "false": False}.get(value, int(value) if key in INTEGER_FIELDS else value)
    return SimpleNamespace(name=name, data=data)


def _catalog(scenario: dict) -> Catalog:
    """The catalog with the trial periods the scenario sets (e.g. a trial that ends)."""
    periods = scenario.get("trial_periods") or {}
    if not periods:
        return CATALOG
    trials = dict(CATALOG.trials)
    for trial, (start, end) in periods.items():
        trials[trial] = trials[trial].model_copy(update={"period": Period(start=start, end=end)})
    return Catalog(CATALOG.rules, trials)


def _as_of(scenario: dict) -> date:
    return date.fromisoformat(str(scenario["as_of"]))


@pytest.mark.parametrize("scenario", [s for _, s in SCENARIOS], ids=[i for i, _ in SCENARIOS])
def test_scenario(scenario):
    if "decide" in scenario:  # a permission: the event refused (naming the rule) or permitted (by a trial)
        events = [_event(line) for line in scenario["events"]]
        born = date.fromisoformat(str(scenario["born"])) if "born" in scenario else None
        decision = decide(events, _event(scenario["decide"]), _catalog(scenario), born)
        refused = decision.refusal.rule if decision.refusal else None
        assert (refused, decision.permitted_by) == (scenario.get("refused"), scenario.get("permitted_by"))
        return
    as_of = _as_of(scenario)
    events = [_event(line) for line in scenario["events"]]
    rules = set(scenario["rules"])
    got = [{"rule": o.rule, "due": o.due.isoformat(), "status": o.status(as_of),
            "exemption": o.exemption.trial if o.exemption else None}
           for o in fold(events, _catalog(scenario), as_of, trials=scenario.get("trials", True),
                         complete=scenario.get("complete", False)) if o.rule in rules]
    expected = [{"rule": e["rule"], "due": str(e["due"]), "status": e["status"], "exemption": e.get("exemption")}
                for e in scenario["expected"] or []]
    assert got == expected


def _crosses_end(scenario: dict, trial: str) -> bool:
    """The scenario's as-of lies after the trial stopped applying: its period ended, or the
    citizen was assessed out of its target group."""
    catalog, as_of = _catalog(scenario), _as_of(scenario)
    end = catalog.trials[trial].period.end
    assessed_out = any(f"trial={trial}" in line and "in_target_group=false" in line for line in scenario["events"])
    return assessed_out or (end is not None and as_of > end)


def test_every_rule_and_every_trial_with_a_concrete_effect_has_scenarios():
    observed = {r.id for r in CATALOG.rules.values() if r.kind == "obligation" and r.schedule != "unobserved"}
    covered = {rule for _, s in SCENARIOS for rule in s.get("rules", [])}
    assert observed - covered == set(), "rules without a scenario"
    checked = {r.id for r in CATALOG.rules.values() if r.kind == "permission" and r.applies_to}  # observable
    decided = {s.get("refused") for _, s in SCENARIOS if "decide" in s}
    assert checked - decided == set(), "permissions without a refusal scenario"
    missing = []
    for trial in sorted(CONCRETE):
        about = [s for _, s in SCENARIOS if trial in s.get("about", [])]
        if not any(_crosses_end(s, trial) for s in about):
            missing.append(f"{trial}: crossing its end")
        if not any(any(line.startswith("case.moved") for line in s["events"]) for s in about):
            missing.append(f"{trial}: crossing a move")
    assert missing == []
