"""What the pages show in Danish: dates, numbers, statuses, roles, kommune names."""

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.municipalities import municipalities

MONTHS = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
          "november", "december")
STATUSES = {"overdue": "Overskredet", "due": "Aktuel", "upcoming": "Kommende", "done": "Udført",
            "waived": "Fritaget", "suspended": "Sat i bero"}
ROLES = {"caseworker": "Sagsbehandler", "evaluator": "Evaluator", "admin": "Driftsansvarlig"}


def long_date(day: date | str) -> str:
    """1. marts 2019"""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


def moment(at: str) -> str:
    """2. december 2026 kl. 15.52.33, Danish time, from an ISO timestamp with its zone"""
    local = datetime.fromisoformat(at).astimezone(DANISH_TIME)
    return f"{long_date(local.date())} kl. {local:%H.%M.%S}"


def number(n: int) -> str:
    """1.234.567: a point between thousands"""
    return f"{n:,}".replace(",", ".")


def kommune(code: str) -> str:
    """Aalborg (851)"""
    return f"{municipalities().get(code, 'ukendt kommune')} ({code})"


def days_overdue(deadline: date | str, as_of: date) -> int:
    """Days past the last day on time (0 on that day and before)."""
    deadline = date.fromisoformat(deadline) if isinstance(deadline, str) else deadline
    return max(0, (as_of - deadline).days)


EVENTS = {"case.opened": "Sag oprettet", "case.moved": "Sag flyttet", "case.assigned": "Sag tildelt",
          "case.closed": "Sag afsluttet", "case.erased": "Sag slettet", "benefit.started": "Ydelse startet",
          "benefit.ended": "Ydelse ophørt", "conversation.held": "Samtale holdt",
          "assessment.completed": "Vurdering afsluttet", "offer.started": "Tilbud startet",
          "offer.ended": "Tilbud afsluttet", "plan.updated": "Plan opdateret",
          "rehab-team.meeting-held": "Møde i rehabiliteringsteamet",
          "medical-certificate.obtained": "Lægeattest indhentet", "mentor.contact": "Kontakt med mentor",
          "target-group.assessed": "Målgruppe vurderet", "cadence.agreed": "Kadence aftalt",
          "offer-duty.suspended": "Ret og pligt til tilbud sat i bero",
          "offer-duty.resumed": "Ret og pligt til tilbud genoptaget"}
# the API's names written without æ, ø, å, as caseworkers write them
WORDS = {"kontanthjaelp": "kontanthjælp", "uddannelseshjaelp": "uddannelseshjælp", "ressourceforloeb": "ressourceforløb",
         "jobafklaringsforloeb": "jobafklaringsforløb", "foertidspension": "førtidspension", "loentilskud": "løntilskud",
         "vejledning-opkvalificering": "vejledning og opkvalificering", "opfoelgningssamtale": "opfølgningssamtale",
         "job": "job", "education": "uddannelse", "other_benefit": "anden ydelse", "moved_abroad": "flyttet til udlandet",
         "other": "andet"}
EFFECTS = {"waive": "fritager", "modify": "ændrer", "suspend": "sætter i bero", "permit": "tillader"}
EFFECT_VERBS = {"waive": "fritager for", "modify": "ændrer", "suspend": "sætter i bero", "permit": "tillader efter"}
HOME = {"caseworker": "/opgaver", "evaluator": "/forsoeg", "admin": "/drift"}  # where a role lands
SERVICES = {"case": "Sagstjenesten", "obligations": "Opgavetjenesten", "reporting": "Rapporteringstjenesten"}
# the audit log's actions (`audited(...)` in the APIs)
AUDIT_ACTIONS = {"read case history": "læste sagens historik", "erase case": "slettede sagen",
                 "read case obligations": "læste sagens opgaver", "read worklist": "læste opgavelisten",
                 "read worklist counts": "læste opgavelistens antal", "reload catalog": "genindlæste kataloget",
                 "read audit log": "læste revisionsloggen"}
DANISH_TIME = ZoneInfo("Europe/Copenhagen")


def word(name: str) -> str:
    return WORDS.get(name, name)


def describe_event(type_: str, data: dict[str, Any]) -> tuple[str, str]:
    """What happened, and its details, as a case's timeline shows them (the date apart)."""
    name = type_.removeprefix("dk.frisag.")
    if name == "case.opened":
        detail = f"{kommune(data['municipality'])}, CPR-nr. {data.get('cpr', 'ukendt')}"
    elif name == "case.moved":
        detail = f"til {kommune(data['municipality'])}"
    elif name == "target-group.assessed":
        detail = f"{data['trial']}: {'i' if data['in_target_group'] else 'ikke i'} målgruppen"
    elif name == "cadence.agreed":
        detail = f"{data['rule']}: hver {data['interval_days']}. dag"
    elif name in EVENTS:
        detail = ", ".join(word(str(value)) if key in ("benefit", "offer", "kind", "reason") else str(value)
                           for key, value in data.items() if key not in ("date", "cpr"))
    else:  # a type this page does not know yet: its fields as they are
        detail = ", ".join(f"{key}: {value}" for key, value in data.items() if key != "date")
    return EVENTS.get(name, name), detail


def amount(value: float | None, unit: str) -> str:
    """An evaluation number: a thousands point, one decimal after a comma where it has one, a share
    as percent; "–" where there is nothing to compute it of."""
    if value is None:
        return "–"
    if unit == "andel":
        return f"{_decimal(value * 100)} %"
    return _decimal(value)


def _decimal(value: float) -> str:
    value = round(value, 1) + 0.0  # + 0.0: no "−0"
    text = f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".").replace("-", "−")


def interval_words(label: str, unit: str, value: float | None, low: float | None, high: float | None) -> str:
    """A difference-in-differences estimate and its 95 % interval, and what the interval says."""
    if value is None or low is None or high is None:
        return f"{label}: forskel-i-forskelle kan ikke beregnes (undertrykt: for få borgere, eller ingen sammenligningsgruppe)."
    scale, unit = (100, "procentpoint") if unit == "andel" else (1, unit)
    value, low, high = value * scale, low * scale, high * scale
    if low > 0:
        meaning = ("Hele intervallet ligger over 0: målet steg mere, eller faldt mindre, i forsøgskommunerne end i "
                   "sammenligningsgruppen.")
    elif high < 0:
        meaning = ("Hele intervallet ligger under 0: målet faldt mere, eller steg mindre, i forsøgskommunerne end i "
                   "sammenligningsgruppen.")
    else:
        meaning = "Intervallet omfatter 0: forskellen er ikke statistisk sikker."
    return (f"{label}: forskel-i-forskelle {_decimal(value)} {unit} (95 %-konfidensinterval fra {_decimal(low)} "
            f"til {_decimal(high)} {unit}). {meaning}")
