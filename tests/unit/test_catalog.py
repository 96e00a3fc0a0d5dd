"""The catalogs against the project's own list of trials and rules (docs/trials.md): every trial
and every rule has an entry with the same municipalities, period and effects, and every entry a
legal or seed reference. No test reads outside the repository."""

import re
import time
from datetime import date
from pathlib import Path

import pytest

from shared.catalog import Catalog, Trial, add_duration

CATALOG = Catalog.load()
LIST = (Path(__file__).resolve().parents[2] / "docs" / "trials.md").read_text(encoding="utf-8")


def _rows(first_column: str) -> dict[str, list[str]]:
    """The table rows of docs/trials.md whose first cell matches, by that cell."""
    rows = {}
    for line in LIST.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if re.fullmatch(first_column, cells[0]):
            rows[cells[0]] = cells[1:]
    return rows


def _effects(cell: str) -> set[tuple[str, str]]:
    return set() if cell == "none" else {tuple(e.split()[:2]) for e in cell.split("; ")}


def test_every_trial_in_the_list_is_in_the_catalog_as_listed():
    listed = _rows(r"T\d+")
    assert set(listed) == set(CATALOG.trials) == {f"T{i}" for i in range(1, 25)}
    for trial_id, (municipalities, period, target_group, effects, seeds) in listed.items():
        trial = CATALOG.trials[trial_id]
        start, end = period.split("..")
        assert set(municipalities.split(", ")) == set(trial.municipalities), trial_id
        assert (date.fromisoformat(start), date.fromisoformat(end) if end else None) == (trial.period.start, trial.period.end), trial_id
        assert target_group == trial.target_group, trial_id
        assert _effects(effects) == {(e.effect, e.rule) for e in trial.effects}, trial_id
        assert seeds.split(", ") == trial.seeds, trial_id


def test_every_rule_in_the_list_is_in_the_catalog_as_listed():
    listed = _rows(r"[A-Z][A-Za-z0-9-]+-[A-Za-z0-9-]+|SANKTION")
    assert set(listed) == set(CATALOG.rules)
    for rule_id, (kind, schedule, legal_reference) in listed.items():
        rule = CATALOG.rules[rule_id]
        assert (kind, schedule or None, legal_reference) == (rule.kind, rule.schedule, rule.legal_reference), rule_id
    assert len([r for r in CATALOG.rules.values() if r.kind == "obligation"]) == 11
    assert len([r for r in CATALOG.rules.values() if r.kind == "permission"]) == 6


def test_every_entry_has_a_legal_or_seed_reference():
    for rule in CATALOG.rules.values():
        assert rule.legal_reference.strip(), rule.id
        for name, parameter in rule.parameters.items():
            assert all(v.reference.strip() for v in parameter.values.values()), f"{rule.id}.{name}"
    for trial in CATALOG.trials.values():
        assert trial.seeds and all(re.fullmatch(r"00\d", s) for s in trial.seeds), trial.id


def test_every_observable_obligation_names_what_completes_it():
    for rule in CATALOG.rules.values():
        if rule.kind == "obligation" and rule.schedule != "unobserved":
            assert rule.completed_by is not None and rule.minutes_per_obligation, rule.id


def test_a_wrong_catalog_file_is_refused_at_load(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "trials").mkdir()
    (tmp_path / "rules" / "X.yaml").write_text("id: X\ntitle: x\nkind: obligation\nlegal_reference: y\nconfidence: H\n")
    with pytest.raises(ValueError, match="needs a schedule"):
        Catalog.load(tmp_path)


@pytest.mark.parametrize(("start", "duration", "sign", "expected"), [
    (date(2020, 1, 31), "1m", 1, date(2020, 2, 29)),  # the month's last day when it has no 31st
    (date(2019, 1, 31), "1m", 1, date(2019, 2, 28)),
    (date(2019, 3, 31), "1m", -1, date(2019, 2, 28)),
    (date(2019, 12, 15), "1m15d", 1, date(2020, 1, 30)),
    (date(2019, 1, 1), "18m", -1, date(2017, 7, 1)),
])
def test_durations_are_calendar_months_and_days(start, duration, sign, expected):
    assert add_duration(start, duration, sign) == expected


@pytest.mark.parametrize(("start", "sign"), [(date(1, 1, 31), -1), (date(9999, 12, 31), 1)])
def test_a_duration_past_the_calendar_is_an_error_at_once(start, sign):
    started = time.monotonic()
    with pytest.raises(ValueError):
        add_duration(start, "1m", sign)  # year 0 or 10000; this once looped for ever
    assert time.monotonic() - started < 1


def test_a_trial_s_effect_on_a_rule_is_its_first_one_on_it():
    trial = Trial.model_validate({**CATALOG.trials["T11"].model_dump(), "effects": [
        {"rule": "LAS-74c", "effect": "waive", "note": "first"}, {"rule": "LAS-74c", "effect": "suspend"},
        {"rule": "SDP-opfoelgning", "effect": "waive"}]})
    assert trial.effect_on("LAS-74c").note == "first"
    assert trial.effect_on("SDP-opfoelgning").effect == "waive"
    assert trial.effect_on("LAB-jobsamtale") is None
