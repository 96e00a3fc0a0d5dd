"""What the pages show in Danish: dates, numbers, statuses, roles, kommune names."""

from datetime import date

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
