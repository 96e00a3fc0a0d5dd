"""The catalogs against DOMAIN.md and RULES.md: every trial and every rule has an entry, and
every entry a legal or seed reference; durations added in calendar months."""

import re
import time
from datetime import date
from pathlib import Path

import pytest

from shared.catalog import Catalog, add_duration

CATALOG = Catalog.load()
SHARED = Path(__file__).resolve().parents[3] / "shared"  # the project's shared/ beside the checkout, as in CI


def _ids(document: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (SHARED / document).read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_every_trial_in_domain_md_and_rule_in_rules_md_has_an_entry():
    assert _ids("DOMAIN.md", r"^\| (T\d+) \|") <= set(CATALOG.trials)
    assert _ids("RULES.md", r"^\| `([A-Za-z0-9-]+)` \|") <= set(CATALOG.rules)


def test_the_catalog_has_the_24_trials_and_the_rules_of_rules_md():
    assert set(CATALOG.trials) == {f"T{i}" for i in range(1, 25)}
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
