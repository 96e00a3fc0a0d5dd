"""The what-if pages' parts that need no HTTP: the form's fields made into the reporting
service's scenario request (`POST /what-if`), its refusals put back on the form's fields in
Danish, and the scenario and its numbers told in Danish for the pages and the application's
attachment."""

import re
from datetime import date
from typing import Any

from services.web import danish
from shared.catalog import Catalog

EFFECTS = {"waive": "fritager for", "suspend": "sætter i bero"}  # the effects the form edits; others stay as they are
EFFECT_ROWS = 3  # empty effect rows offered below a trial's own
MODES = {"replace": "Udkastet erstatter forsøget (samme forsøgsnummer)",
         "add": "Udkastet lægges til som et nyt forsøg (nyt forsøgsnummer)",
         "without": "Uden forsøget: som om det aldrig havde været"}
BLANK = {"seeds": [], "target_group": "all"}  # a draft from nothing: for every citizen of its kommuner
# a refused field's path in the request (as normalised), the form's field, what to say there
REFUSED = (
    (r"scenario\.title", "titel", "Giv scenariet en titel på højst 200 tegn."),
    (r"scenario\.trials\.0\.id", "id", "Giv udkastet et forsøgsnummer, fx T25."),
    (r"scenario\.trials\.0\.title", "navn", "Giv forsøget en titel."),
    (r"scenario\.trials\.0\.municipalities", "kommuner",
     "Skriv kommunekoder for danske kommuner, fx 851 for Aalborg, adskilt af komma."),
    (r"scenario\.trials\.0\.period\.start", "start", "Skriv startdatoen som år-måned-dag, fx 2023-01-01."),
    (r"scenario\.trials\.0\.period\.end", "slut",
     "Skriv slutdatoen som år-måned-dag, fx 2023-12-31, eller lad feltet stå tomt (løbende)."),
    (r"scenario\.trials\.0\.effects", "virkninger", "Vælg en regel fra listen og en virkning for hver virkning."),
    (r"scenario\.without_trials", "maade", "Forsøget findes ikke i rapporteringstjenestens katalog og kan ikke udelades."),
    (r"from", "fra", "Skriv fra-datoen som år-måned-dag, fx 2023-01-01."),
    (r"to", "til", ("Til-datoen skal ligge efter fra-datoen og højst så langt fremme, som fremskrivningen rækker "
                    "(godt et år efter i dag).")),
)


def form_from_trial(trial: dict[str, Any] | None) -> dict[str, str]:
    """The form's fields for a draft made from a trial of the catalog (None: a blank draft)."""
    if trial is None:
        return {"grundlag": "", "titel": "", "maade": "add", "id": "", "navn": "", "kommuner": "", "start": "",
                "slut": "", "fra": "", "til": "", **effect_fields([])}
    return {"grundlag": trial["id"], "titel": f"{trial['id']} ændret", "maade": "replace", "id": f"{trial['id']}-udkast",
            "navn": trial["title"], "kommuner": ", ".join(trial["municipalities"]),
            "start": trial["period"]["start"], "slut": trial["period"]["end"] or "", "fra": "", "til": "",
            **effect_fields([e for e in trial["effects"] if e["effect"] in EFFECTS])}


def effect_fields(effects: list[dict[str, Any]]) -> dict[str, str]:
    """regel_0, virkning_0, ...: the effects given, then EFFECT_ROWS empty ones."""
    rows = [(e["rule"], e["effect"]) for e in effects] + [("", "waive")] * EFFECT_ROWS
    return {f"{name}_{i}": value for i, row in enumerate(rows) for name, value in zip(("regel", "virkning"), row)}


def effect_rows(form: dict[str, str]) -> list[tuple[str, str]]:
    """The form's effect rows (rule, effect) in order, the empty ones too."""
    count = len([name for name in form if re.fullmatch(r"regel_\d+", name)])
    return [(form.get(f"regel_{i}", ""), form.get(f"virkning_{i}", "")) for i in range(count)]


def scenario_request(form: dict[str, str], base: dict[str, Any] | None, catalog_ids: set[str],
                     every_code: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body of `POST /what-if` from the form's fields, and the errors the service could not
    say (empty: post it). `base` is the trial the draft starts from (None: a blank draft); the
    draft replaces it (maade=replace, the same id), is added beside the catalog's trials
    (add, a new id), or the scenario is the catalog without it (without). Dates and codes go as
    written: the reporting service checks them, and its refusals are put on the form."""
    errors: dict[str, str] = {}
    mode = form.get("maade", "")
    if mode not in MODES:
        errors["maade"] = "Vælg, om udkastet erstatter forsøget, lægges til, eller om forsøget udelades."
    elif base is None and mode != "add":
        errors["maade"] = "Et blankt udkast kan kun lægges til: vælg et forsøg at tage udgangspunkt i for at erstatte " \
                          "eller udelade det."
    scenario: dict[str, Any] = {"title": form.get("titel", "").strip()}
    if mode == "without" and base is not None:
        scenario["without_trials"] = [base["id"]]
    elif not errors:
        trial_id = base["id"] if mode == "replace" else form.get("id", "").strip()
        if not trial_id:
            errors["id"] = "Giv udkastet et forsøgsnummer, fx T25."
        elif mode == "add" and trial_id in catalog_ids:
            errors["id"] = f"{trial_id} findes allerede i kataloget: giv udkastet et nyt nummer, eller vælg at det " \
                           "erstatter forsøget."
        codes = every_code if form.get("hele_landet") else list(dict.fromkeys(
            code for code in re.split(r"[\s,;]+", form.get("kommuner", "")) if code))
        if not codes:
            errors["kommuner"] = "Skriv mindst én kommunekode, eller vælg hele landet."
        start, end = form.get("start", "").strip(), form.get("slut", "").strip()
        if _date(start) and _date(end) and _date(end) < _date(start):
            errors["slut"] = "Slutdatoen ligger før startdatoen."
        effects = []
        for rule, effect in effect_rows(form):
            if not rule:
                continue  # an empty row
            if effect not in EFFECTS:
                errors["virkninger"] = "Vælg for hver regel, om forsøget fritager for den eller sætter den i bero."
            effects.append({"rule": rule, "effect": effect})
        kept = [e for e in (base or {}).get("effects", []) if e["effect"] not in EFFECTS]  # modify, permit: as they are
        scenario["trials"] = [{**(base or BLANK), "id": trial_id, "title": form.get("navn", "").strip(),
                               "municipalities": codes, "period": {"start": start, "end": end or None},
                               "effects": effects + kept}]
    return {"scenario": scenario, "from": form.get("fra", "").strip() or None,
            "to": form.get("til", "").strip() or None}, errors


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def refused_fields(errors: list[dict[str, str]]) -> dict[str, str]:
    """The reporting service's field errors (problem+json `errors`) on the form's fields, in
    Danish; one it names that the form has no field for is said under "" with its path."""
    said: dict[str, str] = {}
    for error in errors:
        path = re.sub(r"\[(\d+)\]", r".\1", error["field"]).removeprefix("body.")
        found = next(((field, message) for pattern, field, message in REFUSED if re.match(pattern + r"(\.|$)", path)),
                     ("", f"Rapporteringstjenesten afviste feltet {path}."))
        said.setdefault(*found)
    return said


def scenario_in_words(request: dict[str, Any], catalog: Catalog) -> list[str]:
    """The scenario as sentences: each trial it adds or changes (where, when, what it does) and
    each it leaves out."""
    scenario = request["scenario"]
    said = []
    for trial in scenario.get("trials", []):
        how = "ændrer katalogets forsøg" if trial["id"] in catalog.trials else "nyt forsøg"
        codes = trial["municipalities"]
        where = ("i hele landet (alle 98 kommuner)" if len(codes) == 98 else
                 "i " + ", ".join(danish.kommune(code) for code in codes))
        start, end = trial["period"]["start"], trial["period"]["end"]
        when = (f"fra {danish.long_date(start)} til {danish.long_date(end)}" if end else
                f"fra {danish.long_date(start)} og indtil videre")
        effects = [f"{EFFECTS.get(e['effect'], danish.EFFECT_VERBS.get(e['effect'], e['effect']))} "
                   f"{rule_name(e['rule'], catalog)}" for e in trial["effects"]]
        said.append(f"{trial['id']} ({how}): {trial['title']}, {where}, {when}. Forsøget {', og '.join(effects) if effects else 'ændrer ingen regler'}.")
    for trial_id in scenario.get("without_trials", []):
        title = catalog.trials[trial_id].title if trial_id in catalog.trials else ""
        said.append(f"Uden {trial_id}{f' ({title})' if title else ''}: som om forsøget aldrig havde været.")
    return said


def rule_name(rule_id: str, catalog: Catalog) -> str:
    """Revurdering af ledighedsydelse efter 12 af 18 måneder (LAS § 74 c)"""
    rule = catalog.rules.get(rule_id)
    return f"{rule.title} ({rule.legal_reference})" if rule else rule_id


def per_year(value: float | None, months: int) -> float | None:
    """A number over `months` months as an average year's (None stays None: suppressed)."""
    return None if value is None or months == 0 else value * 12 / months


def cell(value: float | None, suppressed: bool, unit: str = "pligter") -> str:
    """A what-if number as the pages show it: "–" where discretion hides it."""
    return "–" if suppressed or value is None else danish.amount(value, unit)
